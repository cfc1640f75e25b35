# STAND-IN for the parts of nixpkgs' `lib` that this project's module.nix and
# flake.nix use.  Written for ai-sysadmin's CI (no nixpkgs can be fetched on the build
# machines); it is NOT nixpkgs code and implements only the behaviour the project's
# checks rely on.  On a real NixOS host the real nixpkgs lib is used instead.
let
  inherit (builtins)
    attrNames
    concatLists
    concatStringsSep
    elem
    filter
    foldl'
    genList
    isAttrs
    isFunction
    isList
    isString
    length
    listToAttrs
    mapAttrs
    match
    replaceStrings
    substring
    stringLength
    toJSON
    ;

  lib = rec {
    isStandIn = true;

    # ------------------------------------------------------------------ trivial
    id = x: x;
    const = x: _: x;
    flip = f: a: b: f b a;
    boolToString = b: if b then "true" else "false";
    warn = msg: v: builtins.trace "warning: ${msg}" v;
    warnIf = cond: msg: v: if cond then warn msg v else v;
    throwIf = cond: msg: v: if cond then throw msg else v;
    toFunction = v: if isFunction v then v else _: v;
    inherit (builtins) isAttrs isList isString isFunction isInt isBool isPath functionArgs
      attrNames attrValues elem filter length head tail toJSON fromJSON mapAttrs hasAttr
      concatStringsSep replaceStrings listToAttrs concatLists genList elemAt;

    # ------------------------------------------------------------------ lists
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    concatMap = f: xs: concatLists (map f xs);
    flatten = x: if isList x then concatMap flatten x else [ x ];
    any = builtins.any;
    all = builtins.all;
    foldr = op: nul: xs: let n = length xs; go = i: if i == n then nul else op (builtins.elemAt xs i) (go (i + 1)); in go 0;
    foldl = foldl';
    inherit foldl';
    unique = xs: foldl' (acc: x: if elem x acc then acc else acc ++ [ x ]) [ ] xs;
    last = xs: builtins.elemAt xs (length xs - 1);
    toList = x: if isList x then x else [ x ];
    range = a: b: if a > b then [ ] else genList (i: a + i) (b - a + 1);
    imap0 = f: xs: genList (i: f i (builtins.elemAt xs i)) (length xs);
    count = pred: xs: length (filter pred xs);
    subtractLists = a: b: filter (x: !(elem x a)) b;
    sort = builtins.sort;
    sublist = start: n: xs:
      let len = length xs; k = if start + n > len then len - start else n; in
      if k <= 0 then [ ] else genList (i: builtins.elemAt xs (start + i)) k;

    # ------------------------------------------------------------------ attrsets
    nameValuePair = name: value: { inherit name value; };
    mapAttrsToList = f: attrs: map (n: f n attrs.${n}) (attrNames attrs);
    mapAttrs' = f: attrs: listToAttrs (mapAttrsToList f attrs);
    filterAttrs = pred: attrs: listToAttrs (concatMap (n: optional (pred n attrs.${n}) (nameValuePair n attrs.${n})) (attrNames attrs));
    concatMapAttrs = f: attrs: foldl' (a: b: a // b) { } (mapAttrsToList f attrs);
    optionalAttrs = cond: attrs: if cond then attrs else { };
    genAttrs = names: f: listToAttrs (map (n: nameValuePair n (f n)) names);
    attrByPath = path: default: set:
      if path == [ ] then set
      else if isAttrs set && set ? ${builtins.head path} then attrByPath (builtins.tail path) default set.${builtins.head path}
      else default;
    hasAttrByPath = path: set:
      path == [ ] || (isAttrs set && set ? ${builtins.head path} && hasAttrByPath (builtins.tail path) set.${builtins.head path});
    getAttrFromPath = path: set: attrByPath path (throw "stand-in lib: missing attribute ${concatStringsSep "." path}") set;
    setAttrByPath = path: value: if path == [ ] then value else { ${builtins.head path} = setAttrByPath (builtins.tail path) value; };
    recursiveUpdate = a: b:
      a // mapAttrs (n: v: if isAttrs v && a ? ${n} && isAttrs a.${n} && !(isDerivation v) then recursiveUpdate a.${n} v else v) b;
    isDerivation = x: isAttrs x && (x.type or null) == "derivation";
    collect = pred: v: if pred v then [ v ] else if isAttrs v then concatMap (collect pred) (builtins.attrValues v) else [ ];

    # ------------------------------------------------------------------ strings
    optionalString = cond: s: if cond then s else "";
    concatMapStringsSep = sep: f: xs: concatStringsSep sep (map f xs);
    concatMapStrings = f: xs: concatStringsSep "" (map f xs);
    concatLines = concatMapStrings (s: s + "\n");
    concatStrings = concatStringsSep "";
    hasPrefix = p: s: substring 0 (stringLength p) s == p;
    hasSuffix = p: s: let lp = stringLength p; ls = stringLength s; in ls >= lp && substring (ls - lp) lp s == p;
    hasInfix = infix: s: builtins.match ".*${escapeRegex infix}.*" s != null;
    removePrefix = p: s: if hasPrefix p s then substring (stringLength p) (stringLength s) s else s;
    removeSuffix = p: s:
      let lp = stringLength p; ls = stringLength s; in
      if hasSuffix p s then substring 0 (ls - lp) s else s;
    # As lib/strings.nix: a store path itself (not a path inside one).
    isStorePath = x:
      (isString x || builtins.isPath x || (isAttrs x && x ? outPath))
      && (let str = toString x; in substring 0 1 str == "/" && builtins.dirOf str == builtins.storeDir);
    getName = x: if isString x then (builtins.parseDrvName x).name else x.pname or (builtins.parseDrvName x.name).name;
    escapeShellArg = s: "'${replaceStrings [ "'" ] [ "'\\''" ] (toString s)}'";
    escapeShellArgs = concatMapStringsSep " " escapeShellArg;
    splitString = sep: s: filter isString (builtins.split (escapeRegex sep) s);
    escapeRegex = replaceStrings
      [ "\\" "[" "]" "{" "}" "(" ")" "." "*" "+" "?" "^" "$" "|" ]
      [ "\\\\" "\\[" "\\]" "\\{" "\\}" "\\(" "\\)" "\\." "\\*" "\\+" "\\?" "\\^" "\\$" "\\|" ];
    showOption = loc: concatStringsSep "." loc;
    strings = { inherit escapeShellArg escapeShellArgs hasPrefix hasSuffix; };

    # ------------------------------------------------------------------ packages
    getExe' = pkg: name: "${pkg}/bin/${name}";
    getExe = pkg: getExe' pkg (pkg.meta.mainProgram or (builtins.parseDrvName pkg.name).name);
    makeBinPath = concatMapStringsSep ":" (p: "${p}/bin");
    makeSearchPathOutput = _output: sub: concatMapStringsSep ":" (p: "${p}/${sub}");
    # lib/meta.nix: nix-env / buildEnv priority.
    setPrio = priority: drv: drv // { meta = (drv.meta or { }) // { inherit priority; }; };
    hiPrio = setPrio (-10);
    lowPrio = setPrio 10;
    systems.flakeExposed = [ "x86_64-linux" "aarch64-linux" ];

    # ------------------------------------------------------------------ docs helpers
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    literalMD = text: { _type = "literalMD"; inherit text; };
    mdDoc = id;

    # A Nix-syntax rendering of a value, for option documentation.
    toPretty = indent: v:
      if v == null then "null"
      else if builtins.isBool v then boolToString v
      else if builtins.isInt v || builtins.isFloat v then toString v
      else if isString v then toJSON v
      else if builtins.isPath v then toString v
      else if isFunction v then "<function>"
      else if isList v then
        (if v == [ ] then "[ ]" else "[\n" + concatMapStrings (x: "${indent}  ${toPretty "${indent}  " x}\n") v + "${indent}]")
      else if isAttrs v then
        (if v ? _type && v ? text then v.text
         else if isDerivation v then "«derivation ${v.name or "?"}»"
         else if v == { } then "{ }"
         else "{\n" + concatMapStrings (n: "${indent}  ${if match "[A-Za-z_][A-Za-z0-9_'-]*" n != null then n else toJSON n} = ${toPretty "${indent}  " v.${n}};\n") (attrNames v) + "${indent}}")
      else toString v;

    # The entries of lib/licenses.nix the project's packages carry (same `free` flags).
    licenses = {
      asl20 = { spdxId = "Apache-2.0"; shortName = "asl20"; free = true; };
      mit = { spdxId = "MIT"; shortName = "mit"; free = true; };
      postgresql = { spdxId = "PostgreSQL"; shortName = "postgresql"; free = true; };
      tsl = { shortName = "TSL"; fullName = "Timescale License Agreement"; free = false; };
      unfree = { shortName = "unfree"; free = false; };
    };
    maintainers = { };

    # ------------------------------------------------------------------ version
    version = "stand-in";
    trivial.release = "stand-in";
  };

  modules = import ./modules.nix { lib = full; };
  types = import ./types.nix { lib = full; };
  full = lib // modules // { inherit types; } // {
    options = { inherit (modules) mkOption mkEnableOption mkPackageOption; };
    # nixpkgs' lib.nixosSystem lives in the flake; see ../flake.nix.
  };
in
full
