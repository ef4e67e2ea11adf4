"""yilian.sdk: what users import.

* :class:`~yilian.sdk.client.Client`: a chain key (and encryption key) talking to one node;
* :class:`~yilian.sdk.center.Center`: ``publish_record``;
* :class:`~yilian.sdk.enterprise.Enterprise`: ``grant`` / ``revoke``;
* :class:`~yilian.sdk.grantee.Grantee`: ``read``;
* :class:`~yilian.sdk.auditor.Auditor`: ``history``.

The SDK never imports the node: it shares only :mod:`yilian.contracts` (ABI, data
standard, envelope format, request signing) and brings its own SM2 (:mod:`yilian.sdk.sm2`).
"""
