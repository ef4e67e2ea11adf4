"""yilian.protocol: what the node, the API and the SDK agree on, apart from the contracts.

* :mod:`yilian.protocol.standard` -- the data standard (record types, fields, models, the
  canonical encoding, examples);
* :mod:`yilian.protocol.envelope` -- record envelopes (AEAD, key wrap, wrapped-key bundle);
* :mod:`yilian.protocol.signed_request` -- the REST request-signing scheme;
* :mod:`yilian.protocol.rpc_login` -- the JSON-RPC login message;
* :mod:`yilian.protocol.credit_code` -- unified social credit codes;
* :mod:`yilian.protocol.record_ids` -- record ids in each center's namespace;
* :mod:`yilian.protocol.errors` -- :class:`~yilian.protocol.errors.YilianError`, the base
  of every error this layer and the SDK raise.

It imports only :mod:`yilian.crypto` and third-party libraries, never the contracts, the
node, the API or the SDK.
"""
