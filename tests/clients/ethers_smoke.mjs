// Smoke test of a yilian node with ethers.js v6, the way a JavaScript dApp would use it.
//
//   node ethers_smoke.mjs <rpc-url> <private-key> <record-store-address>
//   (or RPC_URL, PRIVATE_KEY, RECORD_STORE in the environment)
//
// Prints one JSON object (the summary) on stdout; exits non-zero on any error.
import {
  Contract,
  JsonRpcProvider,
  Wallet,
  getAddress,
  hexlify,
  id,
  randomBytes,
  version,
} from "ethers";

const [rpcUrl, privateKey, storeAddress] = [
  process.argv[2] ?? process.env.RPC_URL,
  process.argv[3] ?? process.env.PRIVATE_KEY,
  process.argv[4] ?? process.env.RECORD_STORE,
];
if (!rpcUrl || !privateKey || !storeAddress) {
  console.error("usage: node ethers_smoke.mjs <rpc-url> <private-key> <record-store-address>");
  process.exit(2);
}

const ABI = [
  "function put(bytes32 key, bytes32 data)",
  "function get(bytes32 key) view returns (bytes32)",
  "function writes() view returns (uint256)",
  "event RecordPut(bytes32 indexed key, address indexed writer, bytes32 value)",
];

const str = (v) => (v === null || v === undefined ? null : v.toString());

function receiptSummary(receipt) {
  return {
    status: receipt.status,
    hash: receipt.hash,
    blockNumber: receipt.blockNumber,
    blockHash: receipt.blockHash,
    index: receipt.index,
    from: receipt.from,
    to: receipt.to,
    contractAddress: receipt.contractAddress,
    gasUsed: str(receipt.gasUsed),
    cumulativeGasUsed: str(receipt.cumulativeGasUsed),
    gasPrice: str(receipt.gasPrice),
    type: receipt.type,
    logs: receipt.logs.length,
  };
}

async function main() {
  // cacheTimeout -1: ethers shares identical requests made within 250 ms by default, so on a
  // chain that commits in well under that, the second put would reuse the first put's
  // (cached) eth_getTransactionCount "pending" answer and fail with "nonce has already been
  // used" (the same thing happens with hardhat: ethers-io/ethers.js#4258).
  const provider = new JsonRpcProvider(rpcUrl, undefined, { cacheTimeout: -1 });
  provider.pollingInterval = 100;
  const wallet = new Wallet(privateKey, provider);
  const store = new Contract(getAddress(storeAddress), ABI, wallet);

  const network = await provider.getNetwork();
  const blockNumberBefore = await provider.getBlockNumber();
  const feeData = await provider.getFeeData();
  const writesBefore = await store.writes();

  // 1. put with ethers' defaults (it picks the transaction type and fees from the node)
  const key = hexlify(randomBytes(32));
  const value = id("ethers smoke value " + key);
  const tx = await store.put(key, value);
  const receipt = await tx.wait(1, 60_000);
  const block = await provider.getBlock(receipt.blockNumber);
  const fetched = await provider.getTransaction(tx.hash);
  const parsed = receipt.logs.map((log) => store.interface.parseLog(log));

  // 2. an explicit EIP-1559 (type 2) put with zero fees
  const key2 = hexlify(randomBytes(32));
  const value2 = id("ethers smoke value 2 " + key2);
  const tx2 = await store.put(key2, value2, { type: 2, maxFeePerGas: 0n, maxPriorityFeePerGas: 0n });
  const receipt2 = await tx2.wait(1, 60_000);

  // 3. read back and query the logs
  const readBack = await store.get(key);
  const readBack2 = await store.get(key2);
  const events = await store.queryFilter(store.filters.RecordPut(), blockNumberBefore + 1);
  const ownEvents = await store.queryFilter(store.filters.RecordPut(key), blockNumberBefore + 1);
  const writesAfter = await store.writes();

  const summary = {
    ethersVersion: version,
    chainId: str(network.chainId),
    blockNumberBefore,
    blockNumberAfter: await provider.getBlockNumber(),
    feeData: {
      gasPrice: str(feeData.gasPrice),
      maxFeePerGas: str(feeData.maxFeePerGas),
      maxPriorityFeePerGas: str(feeData.maxPriorityFeePerGas),
    },
    wallet: wallet.address,
    nonceAfter: await wallet.getNonce("latest"),
    store: await store.getAddress(),
    key,
    value,
    tx: { hash: tx.hash, type: tx.type, nonce: tx.nonce, chainId: str(tx.chainId) },
    receipt: receiptSummary(receipt),
    block: { number: block.number, hash: block.hash, txs: [...block.transactions] },
    fetchedTx: {
      hash: fetched.hash,
      blockHash: fetched.blockHash,
      blockNumber: fetched.blockNumber,
      from: fetched.from,
      to: fetched.to,
      data: fetched.data,
    },
    parsedLogs: parsed.map((p) => ({ name: p.name, key: p.args.key, writer: p.args.writer, value: p.args.value })),
    key2,
    value2,
    tx2: { hash: tx2.hash, type: tx2.type },
    receipt2: receiptSummary(receipt2),
    readBack,
    readBack2,
    events: events.map((e) => ({
      event: e.eventName,
      key: e.args.key,
      writer: e.args.writer,
      value: e.args.value,
      transactionHash: e.transactionHash,
      blockNumber: e.blockNumber,
      blockHash: e.blockHash,
    })),
    ownEvents: ownEvents.map((e) => e.transactionHash),
    writesBefore: str(writesBefore),
    writesAfter: str(writesAfter),
  };
  console.log(JSON.stringify(summary));
  provider.destroy();
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
