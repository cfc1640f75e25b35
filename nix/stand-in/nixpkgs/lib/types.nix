# STAND-IN option types: the subset of nixpkgs' `lib.types` this project uses, with
# the same names, checks and merge behaviour as far as the project's checks observe
# them.  Written for this project's CI; not nixpkgs code.
{ lib }:
let
  inherit (builtins)
    all
    attrNames
    concatLists
    elem
    filter
    isAttrs
    isBool
    isFloat
    isFunction
    isInt
    isList
    isPath
    isString
    length
    listToAttrs
    map
    toJSON
    ;
  inherit (lib) concatMap optional unique showOption isDerivation;

  fileList = defs: lib.concatMapStrings (d: "\n- In `${d.file}': ${lib.toPretty "  " d.value}") defs;

  mergeEqual = loc: defs:
    let first = (builtins.head defs).value; in
    if all (d: d.value == first) defs then first
    else throw "The option `${showOption loc}' has conflicting definition values:${fileList defs}";

  mergeOne = loc: defs:
    if length defs == 1 then (builtins.head defs).value
    else mergeEqual loc defs;

  mkOptionType =
    { name
    , description ? name
    , check ? (_: true)
    , merge ? mergeEqual
    , getSubOptions ? (_: { })
    , nestedTypes ? { }
    , ...
    }@attrs:
    attrs // { _type = "option-type"; inherit name description check merge getSubOptions nestedTypes; };

  isStringLike = x: isString x || isPath x || (isAttrs x && x ? outPath);

  # Definitions of an attribute set of values, each merged by `elemType` as an option.
  mergeAttrsOf = elemType: loc: defs:
    let
      pushed = concatMap (d: map (v: { inherit (d) file; value = v; }) (lib.pushDown d.value)) defs;
      names = unique (concatMap (d: attrNames d.value) pushed);
      defsFor = n: concatMap (d: optional (d.value ? ${n}) { inherit (d) file; value = d.value.${n}; }) pushed;
      evald = n: lib.modules.evalOption (loc ++ [ n ]) elemType (defsFor n);
    in
    listToAttrs (concatMap (n: let o = evald n; in optional o.isDefined { name = n; value = o.value; }) names);

  # `anything`: attribute sets merge recursively, everything else must agree.
  mergeAnything = loc: defs:
    let values = map (d: d.value) defs; in
    if values != [ ] && all (v: isAttrs v && !(isDerivation v) && !(v ? _type)) values then
      mergeAttrsOf anything loc defs
    else if all isList values then concatLists values
    else if all isFunction values && length values == 1 then builtins.head values
    else mergeEqual loc defs;

  anything = mkOptionType {
    name = "anything";
    description = "anything";
    check = _: true;
    merge = mergeAnything;
  };

  ints = rec {
    between = lo: hi: mkOptionType {
      name = "intBetween";
      description = "integer between ${toString lo} and ${toString hi} (both inclusive)";
      check = x: isInt x && x >= lo && x <= hi;
    };
    positive = mkOptionType { name = "positiveInt"; description = "positive integer, meaning >0"; check = x: isInt x && x > 0; };
    unsigned = mkOptionType { name = "unsignedInt"; description = "unsigned integer, meaning >=0"; check = x: isInt x && x >= 0; };
    u16 = between 0 65535 // { name = "u16"; description = "16 bit unsigned integer; between 0 and 65535 (both inclusive)"; };
  };

  types = rec {
    inherit mkOptionType anything ints isStringLike;

    unspecified = mkOptionType { name = "unspecified"; merge = mergeOne; };
    raw = mkOptionType { name = "raw"; description = "raw value"; merge = mergeOne; };
    bool = mkOptionType { name = "bool"; description = "boolean"; check = isBool; };
    int = mkOptionType { name = "int"; description = "signed integer"; check = isInt; };
    float = mkOptionType { name = "float"; description = "floating point number"; check = isFloat; };
    number = mkOptionType { name = "number"; description = "signed integer or floating point number"; check = x: isInt x || isFloat x; };
    port = ints.u16 // { name = "port"; };
    str = mkOptionType { name = "str"; description = "string"; check = isString; };
    nonEmptyStr = mkOptionType { name = "nonEmptyStr"; description = "non-empty string"; check = x: isString x && x != ""; };
    singleLineStr = mkOptionType {
      name = "singleLineStr"; description = "(optionally newline-terminated) single-line string";
      check = x: isString x && builtins.match "[^\n]*\n?" x != null;
    };
    strMatching = re: mkOptionType {
      name = "strMatching"; description = "string matching the pattern ${re}";
      check = x: isString x && builtins.match re x != null;
    };
    lines = mkOptionType {
      name = "lines"; description = "strings concatenated with \"\\n\""; check = isString;
      merge = _: defs: lib.concatStringsSep "\n" (map (d: d.value) defs);
    };
    commas = mkOptionType {
      name = "commas"; description = "strings concatenated with \",\""; check = isString;
      merge = _: defs: lib.concatStringsSep "," (map (d: d.value) defs);
    };
    path = mkOptionType {
      name = "path"; description = "absolute path";
      check = x: isStringLike x && builtins.substring 0 1 (toString x) == "/";
      merge = mergeEqual;
    };
    # As lib/types.nix: a path in the Nix store (a store path or a file below one).
    pathInStore = mkOptionType {
      name = "pathInStore"; description = "path in the Nix store";
      check = x: isStringLike x && builtins.match "${builtins.storeDir}/[^.].*" (toString x) != null;
      merge = mergeEqual;
    };
    # As lib/types.nix: a derivation or a store path itself; any other string (say
    # "/usr/bin/llama-server" or "llama-cpp") is rejected.
    package = mkOptionType {
      name = "package"; description = "package";
      check = x: isDerivation x || lib.isStorePath x;
      merge = mergeOne;
    };
    attrs = mkOptionType {
      name = "attrs"; description = "attribute set"; check = isAttrs;
      merge = _: defs: lib.foldl' (a: d: a // d.value) { } defs;
    };

    enum = values: mkOptionType {
      name = "enum";
      description = "one of ${lib.concatMapStringsSep ", " toJSON values}";
      check = x: elem x values;
      functor.payload = values;
    };

    nullOr = t: mkOptionType {
      name = "nullOr";
      description = "null or ${t.description}";
      check = x: x == null || t.check x;
      merge = loc: defs:
        let nulls = filter (d: d.value == null) defs; in
        if length nulls == length defs then null
        else if nulls == [ ] then t.merge loc defs
        else throw "The option `${showOption loc}' is defined both null and not null:${fileList defs}";
      getSubOptions = t.getSubOptions;
      nestedTypes.elemType = t;
    };

    listOf = t: mkOptionType {
      name = "listOf";
      description = "list of ${t.description}";
      check = isList;
      merge = loc: defs:
        concatLists (lib.imap0 (i: d:
          lib.imap0 (j: x: (lib.modules.evalOption (loc ++ [ "[definition ${toString (i + 1)}-entry ${toString (j + 1)}]" ]) t
            [ { inherit (d) file; value = x; } ]).value) d.value) defs);
      getSubOptions = prefix: t.getSubOptions (prefix ++ [ "*" ]);
      nestedTypes.elemType = t;
    };

    attrsOf = t: mkOptionType {
      name = "attrsOf";
      description = "attribute set of ${t.description}";
      check = isAttrs;
      merge = mergeAttrsOf t;
      getSubOptions = prefix: t.getSubOptions (prefix ++ [ "<name>" ]);
      nestedTypes.elemType = t;
    };
    lazyAttrsOf = t: attrsOf t // { name = "lazyAttrsOf"; description = "lazy attribute set of ${t.description}"; };

    either = a: b: mkOptionType {
      name = "either";
      description = "${a.description} or ${b.description}";
      check = x: a.check x || b.check x;
      merge = loc: defs:
        if all (d: a.check d.value) defs then a.merge loc defs
        else if all (d: b.check d.value) defs then b.merge loc defs
        else mergeEqual loc defs;
      nestedTypes = { left = a; right = b; };
    };
    oneOf = ts: lib.foldl' either (builtins.head ts) (builtins.tail ts);

    coercedTo = from: f: to: mkOptionType {
      name = "coercedTo";
      description = "${to.description} or ${from.description} convertible to it";
      check = x: (from.check x && to.check (f x)) || to.check x;
      merge = loc: defs: to.merge loc (map (d: d // { value = if from.check d.value && !(to.check d.value) then f d.value else d.value; }) defs);
      getSubOptions = to.getSubOptions;
    };

    functionTo = t: mkOptionType {
      name = "functionTo"; description = "function that evaluates to a(n) ${t.description}";
      check = isFunction;
      merge = loc: defs: args: t.merge loc (map (d: d // { value = d.value args; }) defs);
    };

    submoduleWith = { modules, specialArgs ? { }, shorthandOnlyDefinesConfig ? false, description ? null }:
      let
        defModule = d:
          if isFunction d.value || isPath d.value then { _file = d.file; imports = [ d.value ]; }
          else if shorthandOnlyDefinesConfig then { _file = d.file; config = d.value; }
          else d.value // { _file = d.file; };
        eval = loc: defs: lib.evalModules {
          modules = modules ++ map defModule defs;
          specialArgs = { name = lib.last ([ "<name>" ] ++ loc); } // specialArgs;
          prefix = loc;
        };
      in
      mkOptionType {
        name = "submodule";
        description = if description != null then description else "submodule";
        check = x: isAttrs x || isFunction x || isPath x;
        merge = loc: defs: (eval loc defs).checkedConfig;
        getSubOptions = prefix: (eval prefix [ ]).options;
        inherit modules;
        _isSubmodule = true;
      };
    submodule = m: submoduleWith { modules = lib.toList m; shorthandOnlyDefinesConfig = true; };
  };
in
types
