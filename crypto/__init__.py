"""yilian.crypto: the signature, digest and encryption primitives of the node and the SDK.

* :mod:`yilian.crypto.sm2` -- SM2 signatures and public-key encryption through the
  system's OpenSSL 3 ``libcrypto`` (ctypes);
* :mod:`yilian.crypto.sm` -- SM3 digests and SM4-GCM through ``cryptography``;
* :mod:`yilian.crypto.suites` -- the crypto suites fixed at genesis (``standard`` and
  ``sm``) and private-key files.

Transaction signatures are secp256k1 in every suite and are not handled here. There is one
SM2 implementation (OpenSSL); gmssl survives only as the tests' independent cross-check
(``tests/gmssl_reference.py``). This package imports no other yilian package.
"""
