// Two fields that answer to one stream name, by `rename` or `alias`, are a
// compile error, not a load error later. The type is used after the error:
// a stub impl keeps that compiling, so no cascade of errors follows.
use stateify::Stateify;

#[derive(Stateify)]
struct Conn {
    port: u16,
    #[state(rename = "port")]
    remote_port: u16,
    #[state(alias = "peer")]
    host: String,
    #[state(alias = "peer")]
    address: String,
    #[state(alias = "mtu")]
    mtu: u32,
}

#[derive(Stateify)]
enum Event {
    Moved {
        x: i32,
        #[state(rename = "x")]
        y: i32,
    },
}

fn main() {
    // Uses of the types still type-check: no errors below this line.
    let c = Conn {
        port: 1,
        remote_port: 2,
        host: String::new(),
        address: String::new(),
        mtu: 0,
    };
    let _bytes: Result<Vec<u8>, stateify::Error> = stateify::to_vec(&c);
    let _back: Result<Conn, stateify::Error> = stateify::from_slice(&[]);
    let _e = stateify::to_vec(&Event::Moved { x: 1, y: 2 });
}
