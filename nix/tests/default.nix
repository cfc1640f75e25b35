# The NixOS VM tests, by name.  Remediation and API-authentication tests come with the
# issues that build those parts: add them here as remediation.nix / api-auth.nix.
{ pkgs, module, package }:
{
  vm-basic = import ./basic.nix { inherit pkgs module package; };
  vm-trigger = import ./trigger.nix { inherit pkgs module package; };
}
