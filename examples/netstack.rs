//! A small userspace network stack in the style of gVisor's netstack: a
//! `Stack` with NICs, routes and endpoints. Endpoints point back at their
//! stack with a `Weak`; routes share their NIC. TCP-like state (ports,
//! sequence numbers, buffers, backlog) is saved; the real loopback socket of
//! a listening endpoint and its accept thread are not (`nosave`): after a
//! restore, a deferred hook re-binds the same port, restarts the accept
//! thread and re-registers the endpoint with the stack.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use stateify::{AfterLoad, Error, LoadContext, Stateify};

/// A network interface.
#[derive(Debug, PartialEq, Stateify)]
pub struct Nic {
    pub id: u32,
    pub name: String,
    pub addr: IpAddr,
    pub mtu: u32,
}

/// A route: destination prefix through a NIC (shared with the NIC list).
#[derive(Debug, Stateify)]
pub struct Route {
    pub dest: IpAddr,
    pub prefix: u8,
    pub nic: Arc<Nic>,
}

/// Where a TCP-like endpoint is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Stateify)]
pub enum TcpPhase {
    Listen,
    Established,
    Closed,
}

/// The protocol state of an endpoint: all of it is saved.
#[derive(Debug, PartialEq, Stateify)]
pub struct TcpState {
    pub phase: TcpPhase,
    pub local: SocketAddr,
    pub remote: Option<SocketAddr>,
    pub snd_nxt: u32,
    pub rcv_nxt: u32,
    pub recv_buf: Vec<u8>,
    pub send_buf: VecDeque<u8>,
    /// Peers accepted and not yet handed to the application.
    pub backlog: VecDeque<SocketAddr>,
}

/// A real loopback listener with its accept thread: process state that
/// cannot be saved, rebuilt after a restore.
#[derive(Default)]
pub struct Listener {
    pub addr: Option<SocketAddr>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An endpoint of the stack.
#[derive(Stateify)]
#[state(after_load)]
pub struct Endpoint {
    pub id: u32,
    pub stack: Weak<Stack>,
    pub tcp: Mutex<TcpState>,
    /// Connections served by the accept thread, in this and earlier lives.
    pub served: Arc<AtomicU64>,
    #[state(nosave)]
    pub listener: Mutex<Listener>,
}

/// The stack: NICs, routes, endpoints by id.
#[derive(Stateify)]
pub struct Stack {
    pub nics: Vec<Arc<Nic>>,
    pub routes: Vec<Route>,
    pub endpoints: Mutex<BTreeMap<u32, Arc<Endpoint>>>,
    /// Listening ports with their endpoint: rebuilt, not saved.
    #[state(nosave)]
    pub ports: Mutex<BTreeMap<u16, Weak<Endpoint>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The greeting a listener sends to each client.
pub fn greeting(port: u16, n: u64) -> String {
    format!("hello from port {port}, connection {n}")
}

impl Stack {
    /// A stack with a loopback NIC and an eth0, routes through both.
    pub fn new() -> Arc<Stack> {
        let lo = Arc::new(Nic {
            id: 1,
            name: "lo".into(),
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            mtu: 65536,
        });
        let eth = Arc::new(Nic {
            id: 2,
            name: "eth0".into(),
            addr: "10.0.0.2"
                .parse()
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            mtu: 1500,
        });
        Arc::new(Stack {
            routes: vec![
                Route {
                    dest: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
                    prefix: 8,
                    nic: lo.clone(),
                },
                Route {
                    dest: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    prefix: 0,
                    nic: eth.clone(),
                },
            ],
            nics: vec![lo, eth],
            endpoints: Mutex::new(BTreeMap::new()),
            ports: Mutex::new(BTreeMap::new()),
        })
    }

    fn add(self: &Arc<Self>, tcp: TcpState) -> Arc<Endpoint> {
        let mut eps = lock(&self.endpoints);
        let id = eps.keys().next_back().map_or(1, |k| k + 1);
        let ep = Arc::new(Endpoint {
            id,
            stack: Arc::downgrade(self),
            tcp: Mutex::new(tcp),
            served: Arc::new(AtomicU64::new(0)),
            listener: Mutex::new(Listener::default()),
        });
        eps.insert(id, ep.clone());
        ep
    }

    /// Opens a listening endpoint on a real loopback socket (port 0: any).
    pub fn listen(self: &Arc<Self>, port: u16) -> std::io::Result<Arc<Endpoint>> {
        let ep = self.add(TcpState {
            phase: TcpPhase::Listen,
            local: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            remote: None,
            snd_nxt: 0,
            rcv_nxt: 0,
            recv_buf: Vec::new(),
            send_buf: VecDeque::new(),
            backlog: VecDeque::new(),
        });
        ep.start_listener()?;
        Ok(ep)
    }

    /// A connected endpoint with some protocol state (no real socket).
    pub fn connected(self: &Arc<Self>, local: u16, remote: SocketAddr, seq: u32) -> Arc<Endpoint> {
        self.add(TcpState {
            phase: TcpPhase::Established,
            local: SocketAddr::from((Ipv4Addr::new(10, 0, 0, 2), local)),
            remote: Some(remote),
            snd_nxt: seq,
            rcv_nxt: seq.wrapping_mul(7),
            recv_buf: format!("GET /{seq} HTTP/1.1\r\n").into_bytes(),
            send_buf: b"200 OK".iter().copied().collect(),
            backlog: VecDeque::new(),
        })
    }

    /// The route for `dest`: the longest matching prefix.
    pub fn route(&self, dest: IpAddr) -> Option<&Route> {
        let bits = |a: IpAddr| match a {
            IpAddr::V4(v) => u32::from(v) as u128,
            IpAddr::V6(v) => u128::from(v),
        };
        self.routes
            .iter()
            .filter(|r| {
                let shift = 32u32.saturating_sub(r.prefix as u32);
                r.prefix == 0 || bits(r.dest) >> shift == bits(dest) >> shift
            })
            .max_by_key(|r| r.prefix)
    }

    /// The listening ports registered with the stack.
    pub fn listening_ports(&self) -> Vec<u16> {
        lock(&self.ports).keys().copied().collect()
    }

    /// Stops every listener (the sandbox is shutting down).
    pub fn shutdown(&self) {
        for ep in lock(&self.endpoints).values() {
            lock(&ep.listener).stop();
        }
        lock(&self.ports).clear();
    }
}

impl Endpoint {
    /// The port this endpoint listens on (after binding).
    pub fn port(&self) -> u16 {
        lock(&self.tcp).local.port()
    }

    /// Binds the loopback port in `tcp.local`, records the port actually
    /// bound, registers with the stack and starts the accept thread. A
    /// listener already running is left alone.
    pub fn start_listener(self: &Arc<Self>) -> std::io::Result<()> {
        let mut l = lock(&self.listener);
        if l.thread.is_some() {
            return Ok(());
        }
        let local = lock(&self.tcp).local;
        let sock = TcpListener::bind(local)?;
        sock.set_nonblocking(true)?;
        let addr = sock.local_addr()?;
        lock(&self.tcp).local = addr;
        let stop = Arc::new(AtomicBool::new(false));
        let served = self.served.clone();
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("accept-{}", addr.port()))
            .spawn(move || accept_loop(sock, served, stop2))?;
        *l = Listener {
            addr: Some(addr),
            stop,
            thread: Some(thread),
        };
        if let Some(stack) = self.stack.upgrade() {
            lock(&stack.ports).insert(addr.port(), Arc::downgrade(self));
        }
        Ok(())
    }
}

fn accept_loop(sock: TcpListener, served: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let port = sock.local_addr().map_or(0, |a| a.port());
    while !stop.load(Ordering::Acquire) {
        match sock.accept() {
            Ok((conn, _)) => {
                let n = served.fetch_add(1, Ordering::AcqRel) + 1;
                let _ = serve(conn, port, n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn serve(conn: TcpStream, port: u16, n: u64) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(&conn).read_line(&mut line)?;
    (&conn).write_all(format!("{}\n", greeting(port, n)).as_bytes())
}

/// A client: sends a line, returns the listener's greeting.
pub fn call(port: u16) -> std::io::Result<String> {
    let conn = TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_secs(5),
    )?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    (&conn).write_all(b"hi\n")?;
    let mut line = String::new();
    BufReader::new(&conn).read_line(&mut line)?;
    Ok(line.trim_end().to_string())
}

impl AfterLoad for Endpoint {
    fn after_load(&mut self, cx: &mut LoadContext) -> Result<(), Error> {
        if lock(&self.tcp).phase != TcpPhase::Listen {
            return Ok(());
        }
        // The endpoint is not in its Arc yet: once the whole graph is built,
        // find it through the stack and bring its socket back.
        let stack = self.stack.clone();
        let id = self.id;
        cx.defer(move |_| {
            let stack = stack
                .upgrade()
                .ok_or_else(|| Error::custom("endpoint restored without its stack"))?;
            let ep = lock(&stack.endpoints)
                .get(&id)
                .cloned()
                .ok_or_else(|| Error::custom(format!("endpoint {id} is not in its stack")))?;
            ep.start_listener()
                .map_err(|e| Error::custom(format!("re-binding port {}: {e}", ep.port())))
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_comes_back_on_the_same_port_and_serves() {
        let stack = Stack::new();
        let ep = stack.listen(0).unwrap();
        let port = ep.port();
        assert_eq!(call(port).unwrap(), greeting(port, 1));
        stack.connected(40000, "10.0.0.9:80".parse().unwrap(), 1000);
        let bytes = stateify::to_vec(&stack).unwrap();
        stack.shutdown();
        drop((stack, ep));

        let back: Arc<Stack> = stateify::from_slice(&bytes).unwrap();
        assert_eq!(back.listening_ports(), vec![port]);
        assert_eq!(call(port).unwrap(), greeting(port, 2), "the count survived");
        let eps = lock(&back.endpoints);
        let established = &eps[&2];
        assert!(Arc::ptr_eq(&established.stack.upgrade().unwrap(), &back));
        assert_eq!(lock(&established.tcp).snd_nxt, 1000);
        assert!(Arc::ptr_eq(&back.routes[0].nic, &back.nics[0]));
        assert_eq!(
            back.route("127.0.0.1".parse().unwrap()).unwrap().nic.name,
            "lo"
        );
        assert_eq!(
            back.route("8.8.8.8".parse().unwrap()).unwrap().nic.name,
            "eth0"
        );
        drop(eps);
        back.shutdown();
    }

    /// A task's fd table reached before the stack: each endpoint's `Weak`
    /// leads to the stack that owns it while the endpoint is still open.
    #[test]
    fn endpoints_reached_through_fd_tables_before_their_stack() {
        let stack = Stack::new();
        let listener = stack.listen(0).unwrap();
        let port = listener.port();
        let fds: Vec<Arc<Endpoint>> = vec![
            stack.connected(40000, "10.0.0.9:80".parse().unwrap(), 1000),
            listener,
        ];
        let bytes = stateify::to_vec(&(fds, stack.clone())).unwrap();
        assert_eq!(
            bytes[10],
            stateify::wire::GRAPH_VERSION,
            "a forward reference"
        );
        stack.shutdown();
        drop(stack);

        let (fds, back): (Vec<Arc<Endpoint>>, Arc<Stack>) = stateify::from_slice(&bytes).unwrap();
        let eps = lock(&back.endpoints);
        assert!(Arc::ptr_eq(&fds[0], &eps[&2]) && Arc::ptr_eq(&fds[1], &eps[&1]));
        for ep in &fds {
            assert!(Arc::ptr_eq(&ep.stack.upgrade().unwrap(), &back));
        }
        drop(eps);
        // The listener's after_load deferred its re-bind until the stack
        // was built: it serves on its port again.
        assert_eq!(back.listening_ports(), vec![port]);
        assert_eq!(call(port).unwrap(), greeting(port, 1));
        back.shutdown();
    }
}
