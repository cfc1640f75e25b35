# The ai-sysadmin Python package (the `ai-sysadmin` command), from this repository.
{
  lib,
  buildPythonApplication,
  setuptools,
  openai,
  aiohttp,
  psycopg,
  chromadb,
  drain3,
  prometheus-client,
  jsonschema,
  psutil,
  pytestCheckHook,
  pytest-asyncio,
  pytest-timeout,
}:

buildPythonApplication {
  pname = "ai-sysadmin";
  version = "0.1.0";
  pyproject = true;

  src = ./..;

  build-system = [ setuptools ];

  dependencies = [
    openai
    aiohttp
    psycopg
    chromadb
    drain3
    prometheus-client
    jsonschema
    psutil
  ] ++ psycopg.optional-dependencies.pool;

  nativeCheckInputs = [
    pytestCheckHook
    pytest-asyncio
    pytest-timeout
  ];
  # The suite's real-part tests (llama-server, PostgreSQL, systemd-nspawn) skip in the
  # build sandbox; the Nix checks need nix itself.
  disabledTestPaths = [ "tests/nix" ];

  pythonImportsCheck = [ "ai_sysadmin" "ai_sysadmin.config" ];

  meta = {
    description = "Autonomous system administrator for NixOS hosts, running on local models only";
    license = lib.licenses.mit;
    mainProgram = "ai-sysadmin";
    platforms = lib.platforms.linux or [ "x86_64-linux" "aarch64-linux" ];
  };
}
