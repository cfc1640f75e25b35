# STAND-IN module system: a small re-implementation of the NixOS module system's
# observable behaviour (option declarations, definitions merged by type, mkIf / mkMerge
# / mkOverride pushed down lazily, submodules, freeform types, "option does not exist"
# errors, option renames and removals).  Written for this project's CI; not nixpkgs
# code.  Order properties (mkOrder / mkBefore / mkAfter) sort an option's definitions
# before they are merged, as lib/modules.nix's sortProperties does.
{ lib }:
let
  inherit (builtins)
    attrNames
    concatLists
    filter
    foldl'
    functionArgs
    isAttrs
    isFunction
    isList
    isPath
    isString
    length
    mapAttrs
    toJSON
    ;
  inherit (lib) concatMap optional unique showOption setAttrByPath attrByPath;

  # ---------------------------------------------------------------- properties
  mkIf = condition: content: { _type = "if"; inherit condition content; };
  mkMerge = contents: { _type = "merge"; inherit contents; };
  mkOverride = priority: content: { _type = "override"; inherit priority content; };
  mkOrder = priority: content: { _type = "order"; inherit priority content; };
  defaultPriority = 100;

  isProp = v: isAttrs v && v ? _type && builtins.elem v._type [ "if" "merge" "override" "order" ];

  # Turn one definition of an option *group* into plain attrsets whose values carry
  # the properties, without evaluating any mkIf condition (so a condition may read
  # other options without infinite recursion).
  pushDown = v:
    if !isProp v then [ v ]
    else if v._type == "merge" then concatMap pushDown v.contents
    else if v._type == "if" then map (mapAttrs (_: mkIf v.condition)) (pushDown v.content)
    else if v._type == "override" then map (mapAttrs (_: mkOverride v.priority)) (pushDown v.content)
    else map (mapAttrs (_: mkOrder v.priority)) (pushDown v.content);

  # Resolve the properties of one definition of a *leaf* option.
  discharge = prio: v: dischargeOrdered prio 1000 v;
  dischargeOrdered = prio: order: v:
    if !isProp v then [ { inherit prio order; value = v; } ]
    else if v._type == "merge" then concatMap (dischargeOrdered prio order) v.contents
    else if v._type == "if" then (if v.condition then dischargeOrdered prio order v.content else [ ])
    else if v._type == "override" then dischargeOrdered v.priority order v.content
    else dischargeOrdered prio v.priority v.content;

  # Stable sort by order priority (lower first): mkBefore 500, default 1000, mkAfter 1500.
  sortByOrder = defs:
    let indexed = lib.imap0 (i: d: d // { _i = i; }) defs; in
    map (d: removeAttrs d [ "_i" ]) (builtins.sort (a: b: a.order < b.order || (a.order == b.order && a._i < b._i)) indexed);

  mkOption = attrs: attrs // { _type = "option"; };
  isOption = v: isAttrs v && (v._type or null) == "option";

  # ---------------------------------------------------------------- one option
  evalOptionValue = loc: opt: defs:
    let
      type = opt.type or lib.types.unspecified;
      fromDefs = concatMap (d: map (x: x // { inherit (d) file; }) (discharge defaultPriority d.value)) defs;
      # The default stays unevaluated unless it is the value used.
      fromDefault = if opt ? default then [ { file = "<default>"; prio = 1500; order = 1000; value = opt.default; } ] else [ ];
      all = fromDefs ++ fromDefault;
      prio = foldl' (a: d: if d.prio < a then d.prio else a) 9999 all;
      effective = sortByOrder (filter (d: d.prio == prio) all);
      isDefined = effective != [ ];
      bad = filter (d: !(type.check d.value)) effective;
      merged =
        if !isDefined then throw "The option `${showOption loc}' is used but not defined."
        else if bad != [ ] then
          throw "A definition for option `${showOption loc}' is not of type `${type.description}'. Definition values:${
            lib.concatMapStrings (d: "\n- In `${d.file}': ${lib.toPretty "  " d.value}") bad}"
        else type.merge loc effective;
      # As lib/modules.nix: the default counts as a definition of a read-only option.
      readOnlyOk = !(opt.readOnly or false) || length (fromDefs ++ fromDefault) <= 1
        || throw "The option `${showOption loc}' is read-only, but it's set multiple times.";
    in
    opt // {
      inherit loc type isDefined;
      value = assert readOnlyOk; (opt.apply or lib.id) merged;
      definitions = map (d: d.value) effective;
      files = unique (map (d: d.file) effective);
      highestPrio = prio;
    };

  # ---------------------------------------------------------------- a tree of options
  # decls: nested attrsets with options at the leaves; defs: [ { file; value; } ] at loc.
  # Returns { options; unmatched } where unmatched are definitions of undeclared paths
  # (as { file; prefix; value; }).
  evalTree = loc: decls: defs:
    let
      pushed = concatMap (d:
        map (v:
          if isAttrs v then { inherit (d) file; value = v; }
          else throw "A definition for `${showOption loc}' in `${d.file}' is not an attribute set (it is an option group).")
          (pushDown d.value)) defs;
      defsFor = name: concatMap (d: optional (d.value ? ${name}) { inherit (d) file; value = d.value.${name}; }) pushed;
      sub = mapAttrs (name: decl:
        if isOption decl then { option = evalOptionValue (loc ++ [ name ]) decl (defsFor name); unmatched = [ ]; }
        else let t = evalTree (loc ++ [ name ]) decl (defsFor name); in { option = t.options; inherit (t) unmatched; }) decls;
      undeclared = filter (n: !(decls ? ${n})) (unique (concatMap (d: attrNames d.value) pushed));
    in
    {
      options = mapAttrs (_: s: s.option) sub;
      unmatched =
        concatMap (n: map (d: { inherit (d) file; prefix = loc ++ [ n ]; value = d.value; }) (defsFor n)) undeclared
        ++ concatMap (n: sub.${n}.unmatched) (attrNames sub);
    };

  optionValues = tree: mapAttrs (_: v: if isOption v then v.value else optionValues v) tree;

  # ---------------------------------------------------------------- declarations
  mergeDecls = loc: a: b:
    a // mapAttrs (n: v:
      if !(a ? ${n}) then v
      else if isOption v || isOption a.${n} then
        throw "The option `${showOption (loc ++ [ n ])}' is declared more than once (stand-in module system does not merge declarations)."
      else mergeDecls (loc ++ [ n ]) a.${n} v) b;

  # ---------------------------------------------------------------- modules
  evalModules =
    { modules, specialArgs ? { }, prefix ? [ ] }:
    let
      moduleArgs = { inherit lib options; config = config; } // specialArgs;
      argsFor = f: mapAttrs (name: _:
        moduleArgs.${name} or declared._module.args.${name}
          or (throw "stand-in module system: module argument `${name}' is not available")) (functionArgs f);

      load = file: m:
        let
          file' = if isPath m || isString m then toString m else file;
          raw = if isPath m || isString m then import m else m;
          v = if isFunction raw then raw (argsFor raw) else raw;
          file'' = v._file or file';
          structured = v ? options || v ? config || v ? freeformType;
          known = [ "_file" "key" "imports" "options" "config" "freeformType" "meta" "disabledModules" ];
        in
        [ {
            file = file'';
            options = v.options or { };
            config = if structured then v.config or { } else removeAttrs v known;
            freeformType = v.freeformType or null;
          } ]
        ++ concatMap (load file'') (v.imports or [ ]);

      loaded = concatMap (load "<unknown>") (
        [ {
            _file = "stand-in/lib/modules.nix";
            options._module.args = mkOption {
              type = lib.types.lazyAttrsOf lib.types.raw;
              default = { };
              internal = true;
              description = "Arguments passed to every module (stand-in).";
            };
          } ] ++ modules);

      decls = foldl' (mergeDecls prefix) { } (map (m: m.options) loaded);
      freeforms = filter (t: t != null) (map (m: m.freeformType) loaded);
      freeformType = if freeforms == [ ] then null else builtins.head freeforms;
      # As lib/modules.nix: definitions are merged in reverse order of the collected
      # modules (a later module's list elements and lines come first, imports before
      # their importer).  tests/nix/test_stand_in.py compares this with the real lib.
      reversed = let n = length loaded; in builtins.genList (i: builtins.elemAt loaded (n - 1 - i)) n;
      tree = evalTree prefix decls (map (m: { inherit (m) file; value = m.config; }) reversed);
      options = tree.options;
      declared = optionValues options;
      # Like the real module system, `_module` is internal and not part of `config`.
      public = removeAttrs declared [ "_module" ];
      plen = length prefix;
      relative = p: lib.sublist plen (length p - plen) p;
      freeformValue =
        if freeformType == null || tree.unmatched == [ ] then { }
        else freeformType.merge prefix (map (u: { inherit (u) file; value = setAttrByPath (relative u.prefix) u.value; }) tree.unmatched);
      config = if freeformType == null then public else lib.recursiveUpdate freeformValue public;
      check =
        if freeformType == null && tree.unmatched != [ ] then
          let u = builtins.head tree.unmatched; in
          throw "The option `${showOption u.prefix}' does not exist. Definition in `${u.file}'."
        else true;
    in
    {
      inherit options config check;
      checkedConfig = assert check; config;
      _declarations = decls;
    };

  # ---------------------------------------------------------------- option helpers
  mkEnableOption = name: mkOption {
    type = lib.types.bool;
    default = false;
    example = true;
    description = "Whether to enable ${name}.";
  };

  mkPackageOption = pkgs: name: { default ? [ name ], example ? null, extraDescription ? "", nullable ? false, pkgsText ? "pkgs" }:
    let
      path = if isList default then default else [ default ];
      attrText = lib.concatStringsSep "." path;
    in
    mkOption ({
      type = if nullable then lib.types.nullOr lib.types.package else lib.types.package;
      default = attrByPath path (throw "stand-in pkgs has no ${attrText}") pkgs;
      defaultText = lib.literalExpression "${pkgsText}.${attrText}";
      description = "The ${name} package to use." + lib.optionalString (extraDescription != "") " ${extraDescription}";
    } // lib.optionalAttrs (example != null) { example = lib.literalExpression (if isString example then "${pkgsText}.${example}" else example.text); });

  mkRemovedOptionModule = optionName: replacementInstructions: { options, ... }: {
    options = setAttrByPath optionName (mkOption {
      visible = false;
      description = "Removed option (stand-in).";
      apply = _: throw "The option `${showOption optionName}' can no longer be used since it's been removed. ${replacementInstructions}";
    });
    config.assertions =
      let opt = attrByPath optionName { } options; in
      [ {
          assertion = !(opt.isDefined or false);
          message = "The option definition `${showOption optionName}' in ${toJSON (opt.files or [ ])} no longer has any effect; please remove it.\n${replacementInstructions}";
        } ];
  };

  mkRenamedOptionModule = from: to: { options, ... }:
    let fromOpt = attrByPath from { } options; in
    {
      options = setAttrByPath from (mkOption {
        visible = false;
        description = "Alias of `${showOption to}' (stand-in).";
        apply = _: (lib.getAttrFromPath to options).value;
      });
      config = mkMerge [
        {
          warnings = mkIf (fromOpt.isDefined or false) [
            "The option `${showOption from}' defined in ${toJSON (fromOpt.files or [ ])} has been renamed to `${showOption to}'."
          ];
        }
        (setAttrByPath to (mkIf (fromOpt.isDefined or false)
          (mkOverride (fromOpt.highestPrio or defaultPriority) (mkMerge (fromOpt.definitions or [ ])))))
      ];
    };
in
{
  inherit mkIf mkMerge mkOverride mkOrder mkOption isOption evalModules mkEnableOption mkPackageOption
    mkRemovedOptionModule mkRenamedOptionModule pushDown discharge defaultPriority;
  mkDefault = mkOverride 1000;
  mkOptionDefault = mkOverride 1500;
  mkForce = mkOverride 50;
  mkVMOverride = mkOverride 10;
  mkBefore = mkOrder 500;
  mkAfter = mkOrder 1500;
  modules = {
    inherit evalModules;
    evalOption = loc: type: defs: evalOptionValue loc { inherit type; } defs;
  };
}
