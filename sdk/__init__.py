"""yilian.sdk: what users import.

* :class:`~yilian.sdk.client.Client`: a chain key (and encryption key) talking to one node;
* :class:`~yilian.sdk.center.Center`: ``publish_record``;
* :class:`~yilian.sdk.enterprise.Enterprise`: ``grant`` / ``revoke``;
* :class:`~yilian.sdk.grantee.Grantee`: ``read``;
* :class:`~yilian.sdk.auditor.Auditor`: ``history``.

The SDK never imports the node: it shares only :mod:`yilian.protocol` (data standard,
envelope format, request signing, credit codes), :mod:`yilian.crypto` (the one SM2, on
OpenSSL) and :mod:`yilian.contracts` (ABI, addresses).
"""
