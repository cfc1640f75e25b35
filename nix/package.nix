# The ai-sysadmin Python package (the `ai-sysadmin` command), from this repository.
# Every dependency is a nixpkgs python3Packages attribute (docs/nixos.md lists each with
# its file and licence) except drain3, which nixpkgs lacks: nix/python/drain3.nix builds
# it from its PyPI sdist.
{
  lib,
  callPackage,
  buildPythonApplication,
  setuptools,
  openai,
  aiohttp,
  psycopg,
  chromadb,
  prometheus-client,
  jsonschema,
  psutil,
  rank-bm25,
  google-re2,
  pydantic,
  pytest,
  pytestCheckHook,
  pytest-asyncio,
  pytest-timeout,
  hypothesis,
  drain3 ? callPackage ./python/drain3.nix { },
}:

let
  # pyproject.toml's dependencies and its `test` extra's test runners; the flake's devShell
  # builds its interpreter from these (passthru), so both stay one list.
  dependencies = [
    openai
    aiohttp
    psycopg
    chromadb
    drain3
    prometheus-client
    jsonschema
    psutil
    rank-bm25
    google-re2
    pydantic
  ] ++ psycopg.optional-dependencies.pool;
  testDependencies = [
    pytest
    pytest-asyncio
    pytest-timeout
    hypothesis
  ];
in
buildPythonApplication {
  pname = "ai-sysadmin";
  version = "0.1.0";
  pyproject = true;

  src = ./..;

  # pyproject.toml asks for psycopg[binary]: nixpkgs' psycopg is built with its C
  # implementation already, so the binary wheel extra does not apply.
  postPatch = ''
    substituteInPlace pyproject.toml --replace-fail '"psycopg[binary,pool]>=3.1"' '"psycopg[pool]>=3.1"'
  '';

  build-system = [ setuptools ];

  inherit dependencies;

  nativeCheckInputs = [ pytestCheckHook ] ++ testDependencies;
  # The suite's real-part tests (llama-server, PostgreSQL, systemd-nspawn) skip in the
  # build sandbox; the Nix checks need nix itself.
  disabledTestPaths = [ "tests/nix" ];

  pythonImportsCheck = [ "ai_sysadmin" "ai_sysadmin.config" ];

  passthru = { inherit dependencies testDependencies; };

  meta = {
    description = "Autonomous system administrator for NixOS hosts, running on local models only";
    license = lib.licenses.mit;
    mainProgram = "ai-sysadmin";
    platforms = lib.platforms.linux or [ "x86_64-linux" "aarch64-linux" ];
  };
}
