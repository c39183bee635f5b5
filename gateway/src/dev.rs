//! `--dev`: prints where to connect, a token for user `dev` valid for a
//! day, and a one-line client to try.

use std::net::SocketAddr;

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

/// Prints the banner (to stdout, on purpose: it is the dev's instructions).
pub fn print_banner(addr: SocketAddr, tls: bool, secret: Option<&[u8]>) {
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    let scheme = if tls { "wss" } else { "ws" };
    let Some(secret) = secret else {
        println!(
            "gateway (dev) on {scheme}://{host}:{}/ws — sign tokens with your configured key",
            addr.port()
        );
        return;
    };
    let exp = jsonwebtoken::get_current_timestamp() + 24 * 3600;
    let token = match encode(
        &Header::default(),
        &json!({"sub": "dev", "exp": exp}),
        &EncodingKey::from_secret(secret),
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot sign the dev token: {e}");
            return;
        }
    };
    let url = format!("{scheme}://{host}:{}/ws?token={token}", addr.port());
    let insecure = if tls {
        "NODE_TLS_REJECT_UNAUTHORIZED=0 "
    } else {
        ""
    };
    println!("gateway (dev mode)");
    println!("  url:    {url}");
    println!("  token:  {token}   (sub=dev, valid 24 h)");
    println!("  try:    {insecure}node --experimental-websocket -e \"const s=new WebSocket('{url}');s.onopen=()=>s.send(JSON.stringify({{jsonrpc:'2.0',id:1,method:'demo.echo',params:{{hello:'world'}}}}));s.onmessage=e=>{{console.log(e.data);s.close()}}\"");
    println!("  worker: demo, data and analysis run in this process; Ctrl-C stops everything");
}
