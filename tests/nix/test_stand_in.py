"""The nixpkgs stand-in is faithful where the project's checks depend on it.

Each test names the nixpkgs file whose behaviour the stand-in mirrors.  The lib-level
behaviours (option types, definition order, read-only options, the JSON settings type)
run twice: against the stand-in's lib and against the real nixpkgs lib
(nix-community/nixpkgs.lib, provisioned by scripts/provision-nix.sh), and must agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rig.paths import nix_env
from rig.require import need
from tests.nix.nixtools import REPO, STAND_IN, run

STAND_IN_LIB = STAND_IN / "lib"


def real_lib() -> Path:
    p = nix_env().get("AI_SYSADMIN_NIXPKGS_LIB")
    if not p or not (Path(p) / "default.nix").exists():
        need("the real nixpkgs lib is not provisioned (scripts/provision-nix.sh, AI_SYSADMIN_NIXPKGS_LIB_SRC)")
    return Path(p)


def nix_eval(nix_instantiate: str, expr: str) -> tuple[bool, str]:
    r = run([nix_instantiate, "--eval", "--strict", "--json", "-E", expr], timeout=120)
    return r.returncode == 0, (r.stdout if r.returncode == 0 else r.stderr)


@pytest.fixture(scope="module", params=["stand-in", "nixpkgs"])
def lib_path(request: pytest.FixtureRequest) -> Path:
    return STAND_IN_LIB if request.param == "stand-in" else real_lib()


def module_eval(lib: Path, modules: str, what: str = "config") -> str:
    return f"let lib = import {lib}; in (lib.evalModules {{ modules = [ {modules} ]; }}).{what}"


# ------------------------------------------------------------------ lib/types.nix: types.package


@pytest.mark.parametrize(
    "value, ok",
    [
        ('"/usr/bin/llama-server"', False),  # a plain path string is no package
        ('"llama-cpp"', False),
        ('"/nix/store/00000000000000000000000000000000-llama-cpp"', True),  # a store path is
        ('"/nix/store/00000000000000000000000000000000-llama-cpp/bin/llama-server"', False),
        ('{ type = "derivation"; name = "x"; outPath = "/nix/store/00000000000000000000000000000000-x"; }', True),
    ],
)
def test_types_package_rejects_plain_strings(nix_instantiate: str, lib_path: Path, value: str, ok: bool) -> None:
    """lib/types.nix: `package` checks isDerivation x || isStorePath x."""
    decl = "{ options.p = lib.mkOption { type = lib.types.package; }; }"
    good, out = nix_eval(nix_instantiate, module_eval(lib_path, decl, "options") + f".p.type.check ({value})")
    assert good and json.loads(out) is ok, out
    if not ok:  # and the module system says so, naming the type
        good, out = nix_eval(
            nix_instantiate, f"builtins.typeOf ({module_eval(lib_path, decl + ' { p = ' + value + '; }')}.p)"
        )
        assert not good and "is not of type `package'" in out, out


# ------------------------------------------------------------------ lib/modules.nix: mkOrder


def test_mk_order_sorts_definitions(nix_instantiate: str, lib_path: Path) -> None:
    """lib/modules.nix sortProperties: mkBefore (500) < default (1000) < mkAfter (1500),
    whatever the module order -- nixpkgs' pg_hba defaults are mkAfter for this reason."""
    mods = (
        '{ options.l = lib.mkOption { type = lib.types.lines; default = ""; }; }',
        '{ l = lib.mkAfter "after"; }',
        '{ l = "middle"; }',
        '{ l = lib.mkBefore "before"; }',
        '{ l = lib.mkOrder 1200 "late"; }',
    )
    ok, out = nix_eval(nix_instantiate, module_eval(lib_path, " ".join(mods)) + ".l")
    assert ok, out
    assert json.loads(out) == "before\nmiddle\nlate\nafter"


def test_definition_order(nix_instantiate: str, lib_path: Path) -> None:
    """lib/modules.nix: definitions merge in reverse order of the collected modules."""
    ok, out = nix_eval(
        nix_instantiate,
        module_eval(
            lib_path,
            "{ options.l = lib.mkOption { type = lib.types.lines; }; options.x = lib.mkOption { type = lib.types.listOf lib.types.int; }; } "  # noqa: E501 (a regex / Nix text / message kept verbatim)
            '{ l = "a"; x = [ 1 ]; } { imports = [ { l = "c"; x = [ 3 ]; } ]; l = "b"; x = [ 2 ]; }',
        ),
    )
    assert ok, out
    assert json.loads(out) == {"l": "c\nb\na", "x": [3, 2, 1]}


def test_read_only_option_counts_its_default(nix_instantiate: str, lib_path: Path) -> None:
    """lib/modules.nix: a read-only option with a default cannot be defined again."""
    ok, out = nix_eval(
        nix_instantiate,
        module_eval(
            lib_path,
            '{ options.s = lib.mkOption { type = lib.types.str; default = "/var/lib/x"; readOnly = true; }; } '
            '{ s = "/srv"; }',
        )
        + ".s",
    )
    assert not ok and "read-only, but it's set multiple times" in out, out


# ------------------------------------------------------------------ pkgs/pkgs-lib/formats.nix: formats.json type


def json_type(lib: Path) -> str:
    """The stand-in's formats.json type; for the real lib, formats.nix's definition verbatim."""
    if lib == STAND_IN_LIB:
        return f"(import {STAND_IN}/pkgs.nix {{ }}).formats.json {{ }}"
    return (
        "{ type = with lib.types; let valueType = nullOr (oneOf [ bool int float str path "
        '(attrsOf valueType) (listOf valueType) ]) // { description = "JSON value"; }; in valueType; }'
    )


@pytest.mark.parametrize(
    "defs, result",
    [
        # attribute sets merge; lists concatenate, the later module's elements first
        ("{ s.a.b = 1; } { s.a.c = [ 1 ]; } { s.a.c = [ 2 ]; }", {"a": {"b": 1, "c": [2, 1]}}),
        ('{ s.a = "x"; } { s.a = "y"; }', "conflicting definition values"),
        ("{ s.f = x: x; }", "is not of type `JSON value'"),
        ("{ s.n = null; s.b = true; s.f = 1.5; }", {"n": None, "b": True, "f": 1.5}),
    ],
)
def test_formats_json_type(nix_instantiate: str, lib_path: Path, defs: str, result: object) -> None:
    expr = (
        f"let lib = import {lib_path}; fmt = {json_type(lib_path)}; in "
        "(lib.evalModules { modules = [ { options.s = lib.mkOption { type = lib.types.attrsOf fmt.type; "
        f"default = {{ }}; }}; }} {defs} ]; }}).config.s"
    )
    ok, out = nix_eval(nix_instantiate, expr)
    if isinstance(result, str):
        assert not ok and result in out, out
    else:
        assert ok, out
        assert json.loads(out) == result


# ------------------------------------------------------------------ pkgs/stdenv/generic/check-meta.nix: unfree


@pytest.mark.parametrize(
    "config, attr, ok",
    [
        ("{ }", "timescaledb", False),
        ("{ }", "timescaledb-apache", True),
        ("{ allowUnfree = true; }", "timescaledb", True),
        (
            "{ allowUnfreePredicate = p: (import " + str(STAND_IN_LIB) + ').getName p == "timescaledb"; }',
            "timescaledb",
            True,
        ),
        ("{ allowUnfreePredicate = p: false; }", "timescaledb", False),
    ],
)
def test_unfree_licences_refuse_unless_allowed(nix_instantiate: str, config: str, attr: str, ok: bool) -> None:
    """check-meta.nix: an unfree package's outPath refuses to evaluate unless allowed;
    ext/timescaledb.nix: the TSL build is unfree, timescaledb-apache is Apache-2.0."""
    expr = f"(import {STAND_IN}/pkgs.nix {{ config = {config}; }}).postgresql.pkgs.{attr}.outPath"
    good, out = nix_eval(nix_instantiate, expr)
    assert good == ok, out
    if not ok:
        assert "has an unfree license (‘TSL’), refusing to evaluate" in out, out


# ------------------------------------ nixos/modules/system/boot/{stage-1.nix,loader/grub/grub.nix}

ROOT_MSG = "The ‘fileSystems’ option does not specify your root file system."
GRUB_MSG = "You must set the option ‘boot.loader.grub.devices’ or 'boot.loader.grub.mirroredBoots' to make the system bootable."  # noqa: E501 (a regex / Nix text / message kept verbatim)


@pytest.mark.parametrize(
    "module, failed",
    [
        ("{ }", [ROOT_MSG, GRUB_MSG]),
        ("{ boot.isContainer = true; }", []),
        ('{ fileSystems."/" = { device = "/dev/sda1"; fsType = "ext4"; }; boot.loader.grub.device = "/dev/sda"; }', []),
        ('{ fileSystems."/" = { device = "/dev/sda1"; fsType = "ext4"; }; }', [GRUB_MSG]),
        ("{ boot.loader.grub.enable = false; boot.loader.systemd-boot.enable = true; }", [ROOT_MSG]),
    ],
)
def test_boot_assertions(nix_instantiate: str, module: str, failed: list[str]) -> None:
    expr = (
        f"let lib = import {STAND_IN_LIB}; pkgs = import {STAND_IN}/pkgs.nix {{ }}; "
        f"sys = import {STAND_IN}/nixos {{ inherit lib; pkgsFor = {{ system, config ? {{ }} }}: pkgs.withConfig config; }} "  # noqa: E501 (a regex / Nix text / message kept verbatim)
        f'{{ system = "x86_64-linux"; modules = [ {module} ]; }}; in sys.failed'
    )
    ok, out = nix_eval(nix_instantiate, expr)
    assert ok, out
    assert json.loads(out) == failed


def test_vm_test_nodes_meet_the_boot_assertions(nix_instantiate: str) -> None:
    """nixos/modules/virtualisation/qemu-vm.nix gives VM-test nodes a root file system
    and no boot loader to install; so does the stand-in's runNixOSTest."""
    expr = (
        f"let pkgs = import {STAND_IN}/pkgs.nix {{ }}; t = import {REPO}/nix/tests/basic.nix "
        f"{{ inherit pkgs; module = {REPO}/module.nix; package = pkgs.python3Packages.openai; }}; "
        "in builtins.mapAttrs (_: e: e.failed) t.evaluated"
    )
    ok, out = nix_eval(nix_instantiate, expr)
    assert ok, out
    assert json.loads(out) == {"machine": [], "exposed": []}


# ------------------------------------------------------------------ module.nix under the real lib


@pytest.mark.parametrize("name", ["default", "cuda", "api-exposed", "remote-db", "chromadb", "embed"])
def test_module_renders_the_same_under_the_real_lib(nix_instantiate: str, name: str) -> None:
    """module.nix (and the stand-in NixOS modules) evaluated by nixpkgs' own module system
    render exactly what the stand-in's module system renders."""
    from tests.nix.cases import CASES
    from tests.nix.nixtools import render

    real = render(CASES[name], lib_path=str(real_lib()))
    assert real["assertions"] == [] and real["warnings"] == []
    assert real == render(CASES[name])


@pytest.mark.parametrize(
    "svc, message",
    [
        ({"api": {"enable": True, "host": "0.0.0.0"}}, "is not a loopback address"),
        ({"database": {"name": "aisys"}}, "must equal database.user"),
        ({"ollamaHost": "http://x:11434"}, "no longer has any effect"),
    ],
)
def test_assertions_under_the_real_lib(nix_instantiate: str, svc: dict, message: str) -> None:
    from tests.nix.cases import base
    from tests.nix.nixtools import render

    failed = render(base(**svc), lib_path=str(real_lib()))["assertions"]
    assert any(message in m for m in failed), failed


def test_unknown_option_under_the_real_lib(nix_instantiate: str) -> None:
    from tests.nix.cases import base
    from tests.nix.nixtools import EvalError, render

    with pytest.raises(EvalError, match=r"services.ai-sysadmin.llamacpp.trigger.modle' does not exist"):
        render(base(llamacpp={"trigger": {"modle": "/x"}}), lib_path=str(real_lib()))


@pytest.mark.parametrize("config, ok", [("{ }", False), ("{ allowUnfree = true; }", True)])
def test_cuda_build_needs_allow_unfree(nix_instantiate: str, config: str, ok: bool) -> None:
    """llama-cpp's CUDA build depends on cudaPackages (CUDA EULA, unfree): a CUDA host
    allows unfree; the ROCm and Vulkan builds need nothing."""
    for flag, needs in (("cudaSupport", True), ("rocmSupport", False), ("vulkanSupport", False)):
        expr = f"(import {STAND_IN}/pkgs.nix {{ config = {config}; }}).llama-cpp.override {{ {flag} = true; }}"
        good, out = nix_eval(nix_instantiate, f"({expr}).outPath")
        assert good == (ok or not needs), (flag, out)
        if not good:
            assert "cuda_cudart-stand-in" in out and "unfree" in out, out
