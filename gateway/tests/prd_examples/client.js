const socket = new WebSocket("wss://api.example.com/ws?token=jwt-token-here");

socket.onopen = () => {
  console.log("Connected");
  socket.send(JSON.stringify({
    jsonrpc: "2.0",
    method: "data.processHeavyTask",
    params: { input: "large-dataset" },
    id: "req-123"
  }));
};

socket.onmessage = (event) => {
  const response = JSON.parse(event.data);
  if (response.id === "req-123") {
    console.log("Result:", response.result);
  } else if (response.type === "progress") {
    console.log("Progress:", response.percent);
  }
};

socket.onclose = () => {
  console.log("Disconnected - implement reconnect logic");
};
