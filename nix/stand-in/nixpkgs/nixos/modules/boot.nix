# STAND-IN for the boot options whose assertions every real NixOS system meets:
#  * nixos/modules/system/boot/stage-1.nix: "The ‘fileSystems’ option does not specify
#    your root file system." (only with boot.initrd.enable, which defaults to
#    !boot.isContainer);
#  * nixos/modules/system/boot/loader/grub/grub.nix: "You must set the option
#    ‘boot.loader.grub.devices’ or 'boot.loader.grub.mirroredBoots' to make the system
#    bootable." (boot.loader.grub.enable defaults to !boot.isContainer).
# VM tests meet both through the test driver's qemu-vm.nix (see ../test.nix).  Not
# nixpkgs code.
{ lib, config, ... }:
let
  inherit (lib) mkOption types;
in
{
  options = {
    boot.isContainer = mkOption { type = types.bool; default = false; description = "Whether this NixOS machine is a lightweight container."; };
    boot.initrd.enable = mkOption { type = types.bool; default = !config.boot.isContainer; description = "Whether to enable the NixOS initial RAM disk."; };
    boot.loader.grub = {
      enable = mkOption { type = types.bool; default = !config.boot.isContainer; description = "Whether to enable the GNU GRUB boot loader."; };
      device = mkOption { type = types.nullOr types.str; default = null; description = "The device GRUB is installed on."; };
      devices = mkOption { type = types.listOf types.str; default = [ ]; description = "Devices GRUB is installed on."; };
      mirroredBoots = mkOption { type = types.listOf types.attrs; default = [ ]; description = "Mirrored boot configurations."; };
    };
    boot.loader.systemd-boot.enable = mkOption { type = types.bool; default = false; description = "Whether to enable systemd-boot."; };
    fileSystems = mkOption {
      type = types.attrsOf (types.submodule ({ name, ... }: {
        options.mountPoint = mkOption { type = types.str; default = name; description = "Mount point."; };
        options.device = mkOption { type = types.nullOr types.str; default = null; description = "Device."; };
        options.fsType = mkOption { type = types.str; default = "auto"; description = "File system type."; };
        options.options = mkOption { type = types.listOf types.str; default = [ "defaults" ]; description = "Mount options."; };
      }));
      default = { };
      description = "The file systems to be mounted.";
    };
  };
  config = {
    # grub.nix: an explicit device counts as one of `devices`.
    boot.loader.grub.devices = lib.optional (config.boot.loader.grub.device != null) config.boot.loader.grub.device;
    assertions = lib.optional config.boot.initrd.enable {
      assertion = lib.any (fs: fs.mountPoint == "/") (builtins.attrValues config.fileSystems);
      message = "The ‘fileSystems’ option does not specify your root file system.";
    } ++ lib.optional config.boot.loader.grub.enable {
      assertion = config.boot.loader.grub.devices != [ ] || config.boot.loader.grub.mirroredBoots != [ ];
      message = "You must set the option ‘boot.loader.grub.devices’ or 'boot.loader.grub.mirroredBoots' to make the system bootable.";
    };
  };
}
