# A NixOS-shaped system generation, built into a real (test-local) Nix store: the
# layout of a nixos-system toplevel that preflight reads, with no NixOS behind it.
#
#   nix-build generation.nix --argstr specFile /path/spec.json
#
# spec.json: { "name", "units": { "foo.service": "<unit text>" }, "wants": [ units ],
#   "kernel": "6.6.1", "systemd": "256", "users": [ { "name", "isSystemUser" } ],
#   "groups": [ names ], "packages": [ { "name", "version", "kib" } ] }
#
# Unit files, the kernel, initrd, modules, systemd, packages and users-groups.json are
# builtins.toFile store paths (created at evaluation, no build): each unit's text has
# its own store path, as on NixOS (there: unit-<name>/<name>).  Only the toplevel is
# built; its `activate` names users-groups.json the way nixpkgs' users-groups.nix
# hands `spec` to update-users-groups.pl.
{ specFile }:
let
  lines = builtins.concatStringsSep "\n";
  spec = builtins.fromJSON (builtins.readFile specFile);
  kib = builtins.concatStringsSep "" (builtins.genList (_: "0123456789abcdef") 64);
  blob = n: builtins.concatStringsSep "" (builtins.genList (_: kib) n);
  file = name: text: builtins.toFile name text;
  # The firewall as nixpkgs renders it (firewall-iptables.nix / firewall-nftables.nix):
  # "firewall": { "tcp": [ 22 ], "ranges": [ [ 8000, 8010 ] ] } or "nftables": { … }.
  fw = spec.firewall or null;
  fwStart = file "firewall-start" (''
    #!/bin/sh
    ip46tables -N nixos-fw
    ip46tables -A nixos-fw -m conntrack --ctstate ESTABLISHED,RELATED -j nixos-fw-accept
  '' + lines (map (p: "ip46tables -A nixos-fw -p tcp --dport ${toString p} -j nixos-fw-accept ") fw.tcp
    ++ map (r: "ip46tables -A nixos-fw -p tcp --dport ${toString (builtins.elemAt r 0)}:${toString (builtins.elemAt r 1)} -j nixos-fw-accept ") (fw.ranges or [ ]))
    + "\nip46tables -A nixos-fw -j nixos-fw-log-refuse\n");
  fwUnit = "[Unit]\nDescription=Firewall\n[Service]\nType=oneshot\nRemainAfterExit=true\n"
    + "ExecStart=@${fwStart} firewall-start\nX-ReloadIfChanged=true\n";
  nft = spec.nftables or null;
  nftSet = builtins.concatStringsSep ", " (map toString nft.tcp ++ map (r: "${toString (builtins.elemAt r 0)}-${toString (builtins.elemAt r 1)}") (nft.ranges or [ ]));
  nftRules = file "nixos-fw.nft" ''
    table inet nixos-fw {
      chain input-allow {
        ${if nft.tcp == [ ] && (nft.ranges or [ ]) == [ ] then "" else "tcp dport { ${nftSet} } accept"}
        icmp type echo-request accept
      }
    }
  '';
  nftStart = file "nftables-start" "#!/bin/sh\nnft -f ${nftRules}\n";
  nftUnit = "[Unit]\nDescription=nftables firewall\n[Service]\nType=oneshot\nExecStart=${nftStart}\n";
  allUnits = spec.units
    // (if fw == null then { } else { "firewall.service" = fwUnit; })
    // (if nft == null then { } else { "nftables.service" = nftUnit; });
  units = builtins.mapAttrs (n: text: builtins.toFile n text) allUnits;
  kernel = file "linux-${spec.kernel}-bzImage" "kernel ${spec.kernel}\n";
  initrd = file "initrd-linux-${spec.kernel}" "initrd ${spec.kernel}\n";
  modules = file "linux-${spec.kernel}-modules" "modules ${spec.kernel}\n";
  systemd = file "systemd-${spec.systemd}" "systemd ${spec.systemd}\n";
  usersGroups = file "users-groups.json" (builtins.toJSON {
    mutableUsers = false;
    users = map (u: u // { group = u.group or u.name; }) spec.users;
    groups = map (g: { name = g; gid = null; members = [ ]; }) spec.groups;
  });
  activate = file "activate" ''
    #!/bin/sh
    # users
    echo update-users-groups.pl ${usersGroups}
  '';
  packages = map (p: { inherit (p) name; path = file "${p.name}-${p.version}" (blob p.kib); }) spec.packages;
in
derivation {
  name = "nixos-system-${spec.name}";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  passAsFile = [ "buildScript" ];
  buildScript = ''
    export PATH=/bin:/usr/bin
    set -e
    u=$out/etc/systemd/system
    mkdir -p $u/multi-user.target.wants $out/sw
    echo 25.05 > $out/nixos-version
    echo systemd > $out/init-interface-version
    ln -s ${kernel} $out/kernel
    ln -s ${initrd} $out/initrd
    ln -s ${modules} $out/kernel-modules
    ln -s ${systemd} $out/systemd
    cp ${activate} $out/activate
    ${lines (builtins.attrValues (builtins.mapAttrs (n: p: "ln -s ${p} $u/${n}") units))}
    ${lines (map (n: "ln -s ../${n} $u/multi-user.target.wants/${n}") spec.wants)}
    ${lines (map (p: "ln -s ${p.path} $out/sw/${p.name}") packages)}
  '';
  args = [ "-c" ". $buildScriptPath" ];
}
