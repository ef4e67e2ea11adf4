"""yilian.node.crypto: the node's signature, digest and encryption primitives.

* :mod:`yilian.node.crypto.sm2` -- SM2 signatures and public-key encryption through the
  system's OpenSSL 3 ``libcrypto`` (ctypes);
* :mod:`yilian.node.crypto.sm` -- SM3 digests and SM4-GCM through ``cryptography``;
* :mod:`yilian.node.crypto.suites` -- the crypto suites fixed at genesis (``standard`` and
  ``sm``) and private-key files.

Transaction signatures are secp256k1 in every suite and are not handled here.
"""
