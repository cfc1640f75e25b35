# drain3 (the log template miner behind L1) is not in nixpkgs: built here from its PyPI
# sdist, pinned by hash.  Its own dependencies come from nixpkgs
# (pkgs/development/python-modules/{jsonpickle,cachetools}); setup.py pins exact old
# versions of both, which are relaxed to the ones nixpkgs ships.
{
  lib,
  buildPythonPackage,
  fetchPypi,
  setuptools,
  jsonpickle,
  cachetools,
}:

buildPythonPackage rec {
  pname = "drain3";
  version = "0.9.11";
  pyproject = true;

  src = fetchPypi {
    inherit pname version;
    # sha256sum drain3-0.9.11.tar.gz = 9ab4b1407fad74f56554ae371ef019c3c7985861631f4bab46a0e92585125f75
    hash = "sha256-mrSxQH+tdPVlVK43HvAZw8eYWGFjH0urRqDpJYUSX3U=";
  };

  postPatch = ''
    substituteInPlace setup.py \
      --replace-fail "'jsonpickle==1.5.1', 'cachetools==4.2.1'" "'jsonpickle', 'cachetools'"
  '';

  build-system = [ setuptools ];
  dependencies = [ jsonpickle cachetools ];

  # The sdist ships no tests.
  doCheck = false;
  pythonImportsCheck = [ "drain3" ];

  meta = {
    description = "Persistent and streaming log template miner";
    homepage = "https://github.com/logpai/Drain3";
    license = lib.licenses.mit;
  };
}
