import websocket
import json

def on_open(ws):
    print("Connected")
    ws.send(json.dumps({
        'jsonrpc': '2.0',
        'method': 'analysis.runModel',
        'params': {'data': 'input'},
        'id': 'req-456'
    }))

def on_message(ws, message):
    data = json.loads(message)
    if data.get('id') == 'req-456':
        print("Result:", data.get('result'))

ws = websocket.WebSocketApp("wss://api.example.com/ws?token=jwt-token",
                            on_open=on_open,
                            on_message=on_message)
ws.run_forever(ping_interval=30)  # Manual heartbeat
