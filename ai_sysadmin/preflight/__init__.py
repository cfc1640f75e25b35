"""`ai-sysadmin preflight`: judge a NixOS switch before it happens (docs/preflight.md).

One concept per module:

* system   -- a NixOS system path (validation, the links a reboot depends on)
* closure  -- `nix store diff-closures` parsed, and the store's free space
* units    -- which units a switch would start, stop, restart or reload
* accounts -- users and groups the new system no longer declares
* risks    -- risk flags with their evidence
* verdict  -- ok | warn | block with reasons, and the exit code
* check    -- composition: from two system paths to one report

No model, no database: the verdict stands alone and is fast enough to run inside
`switch-to-configuration` (nixpkgs' `system.preSwitchChecks`).
"""
