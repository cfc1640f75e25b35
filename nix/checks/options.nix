# Option declarations of services.ai-sysadmin as JSON, for the generated reference in
# docs/nixos.md (nix/checks/gen-options-doc.py).  Evaluated with the nixpkgs STAND-IN.
let
  lib = import ../stand-in/nixpkgs/lib;
  pkgs = import ../stand-in/nixpkgs/pkgs.nix { inherit lib; system = "x86_64-linux"; };
  nixosSystem = import ../stand-in/nixpkgs/nixos { inherit lib; pkgsFor = { system, config ? { } }: pkgs.withConfig config; };
  sys = nixosSystem { system = "x86_64-linux"; modules = [ ../../module.nix ]; };
  isOption = v: builtins.isAttrs v && (v._type or null) == "option";
  text = v: if builtins.isAttrs v && v ? _type && v ? text then v.text else lib.toPretty "" v;
  walk = loc: tree: lib.concatMap (name:
    let v = tree.${name}; l = loc ++ [ name ]; in
    if isOption v then
      (if (v.visible or true) == false || (v.internal or false) then [ ]
       else [ {
         name = lib.concatStringsSep "." l;
         description = v.description or "";
         type = v.type.description;
         default = if v ? defaultText then text v.defaultText else if v ? default then text v.default else null;
         example = if v ? example then text v.example else null;
         readOnly = v.readOnly or false;
       } ])
      ++ (if v.type ? getSubOptions && v.type.name != "attrsOf" && lib.hasPrefix "submodule" v.type.name
          then walk l (v.type.getSubOptions l) else [ ])
    else walk l v) (builtins.attrNames tree);
in
walk [ "services" "ai-sysadmin" ] sys.options.services.ai-sysadmin
