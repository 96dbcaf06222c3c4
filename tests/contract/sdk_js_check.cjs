// The official JS SDK (@elevenlabs/elevenlabs-js) against the emulator served on loopback.
// Run by tests/contract/test_sdk_js.py: node sdk_js_check.cjs SDK_DIR URL KEY AGENT
// Every call goes through the SDK (which validates answers against its own types, unknown
// keys passed through); rag-query has no SDK method in 2.73, so its JSON is parsed with the
// SDK's own AgentKnowledgeBaseRagQueryResponseModel serializer. Prints one JSON line.
"use strict";
const path = require("node:path");
const [sdkDir, baseUrl, apiKey, agentId] = process.argv.slice(2);
const pkg = path.join(sdkDir, "node_modules", "@elevenlabs", "elevenlabs-js");
const { ElevenLabsClient } = require(pkg);
const serialization = require(path.join(pkg, "serialization"));
const LONG = "Orders ship within two working days.\n\n".repeat(20);
const STRICT = { unrecognizedObjectKeys: "passthrough", breadcrumbsPrefix: ["response"] };

async function main() {
  const client = new ElevenLabsClient({ apiKey, baseUrl });
  const ai = client.conversationalAi;
  const docs = ai.knowledgeBase.documents;
  const main = await ai.agents.get(agentId);
  const created = await ai.agents.branches.create(agentId, {
    parentVersionId: main.versionId, name: "js", description: "js sdk",
  });
  const branch = created.createdBranchId;
  const folder = (await docs.createFolder({ name: "JS folder" })).id;
  const doc = (await docs.createFromText({ text: LONG, name: "Shipping", parentFolderId: folder })).id;
  await ai.agents.get(agentId, { branchId: branch });
  const listed = await ai.agents.branches.list(agentId, { includeArchived: true });
  await ai.agents.branches.get(agentId, branch);
  await ai.agents.branches.update(agentId, branch, { name: "js-2" });
  const deps = await docs.getAgents(doc);
  await docs.getBulkAgents({ documentIds: [doc] });
  await docs.get(doc);
  await docs.get(folder);
  const kb = await ai.knowledgeBase.list({ ancestorFolderId: folder });
  await docs.move(doc, { moveTo: undefined });
  await docs.bulkMove({ documentIds: [doc], moveTo: folder });
  await ai.agents.branches.merge(agentId, branch, { targetBranchId: main.branchId });
  const model = "multilingual_e5_large_instruct";
  const batch = await ai.knowledgeBase.getOrCreateRagIndexes({
    items: [
      { documentId: doc, createIfMissing: true, model },
      { documentId: "missing", createIfMissing: true, model },
    ],
  });
  const resp = await fetch(`${baseUrl}/v1/convai/agents/${agentId}/knowledge-base/rag-query`, {
    method: "POST",
    headers: { "xi-api-key": apiKey, "content-type": "application/json" },
    body: JSON.stringify({ query: "orders ship" }),
  });
  const rag = serialization.AgentKnowledgeBaseRagQueryResponseModel.parseOrThrow(
    await resp.json(), STRICT,
  );
  console.log(JSON.stringify({
    branches: listed.results.length,
    dependent_branches: deps.branches.length,
    listed: kb.documents.map((d) => d.id),
    doc,
    batch_status: batch[doc].status === "success" ? batch[doc].data.status : batch[doc].status,
    batch_failure: batch.missing.status === "failure" ? batch.missing.errorCode : null,
    rag_chunks: rag.chunks.length,
    rag_text: rag.chunks[0] && rag.chunks[0].text,
  }));
}

main().catch((err) => {
  console.error(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
