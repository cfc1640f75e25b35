# Shared pieces of the NixOS VM tests.
{ pkgs, lib }:
{
  # SmolLM2-135M-Instruct (Apache-2.0), pinned by commit and hash: building the VM
  # tests fetches it once (about 100 MB, a fixed-output download).
  tinyModel = pkgs.fetchurl {
    name = "SmolLM2-135M-Instruct-Q4_K_M.gguf";
    url = "https://huggingface.co/unsloth/SmolLM2-135M-Instruct-GGUF/resolve/9e6855bc4be717fca1ef21360a1db4b29d5c559a/SmolLM2-135M-Instruct-Q4_K_M.gguf";
    hash = "sha256-7V+jDEh7KC7BVsKQYvEiLlwgh1qUSsmCidvSQulH90c=";
    meta.license = lib.licenses.asl20;
  };

  # A machine running the whole service on the CPU, all roles on the tiny model.
  machine = { module, package, model, extra ? { } }: { lib, ... }: {
    imports = [ module extra ];
    virtualisation.memorySize = 4096;
    virtualisation.cores = 2;
    services.ai-sysadmin = {
      enable = true;
      inherit package;
      llamacpp = {
        acceleration = "cpu";
        trigger = { inherit model; contextSize = 1024; };
        review = { inherit model; contextSize = 1024; };
        meta = { inherit model; contextSize = 1024; };
      };
    };
  };
}
