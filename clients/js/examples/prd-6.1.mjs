// The PRD's example 6.1 with the SDK: reconnects, re-attaches and reports progress by itself.
// GW_URL (ws[s]://host:port/ws) and GW_TOKEN (a JWT) come from the environment.
import { Client } from "bullmq-wire-client";

const client = new Client(process.env.GW_URL, { token: process.env.GW_TOKEN });
client.on("open", () => console.log("Connected"));
const result = await client.call("data.processHeavyTask", { input: "large-dataset" }, {
  onProgress: (p) => console.log("Progress:", p),
});
console.log("Result:", JSON.stringify(result));
client.close();
