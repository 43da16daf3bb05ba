//! IP and socket addresses, written as their text form (readable in
//! `pretty` output), except `SocketAddrV6`, whose flow info and scope id
//! need fields.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::error::{Error, Result};
use crate::{Loader, Saver, Stateify};

macro_rules! textual {
    ($($t:ty),*) => {$(
        impl Stateify for $t {
            fn save(&self, s: &mut Saver) -> Result<()> {
                s.write_str(&self.to_string());
                Ok(())
            }
            fn load(l: &mut Loader) -> Result<Self> {
                let at = l.offset();
                let text = l.read_str()?;
                text.parse().map_err(|e| {
                    Error::invalid(format!("`{text}` is not a valid {}: {e}", stringify!($t))).at(at)
                })
            }
        }
    )*};
}

textual!(IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4);

const V6_FIELDS: &[&str] = &["ip", "port", "flowinfo", "scope_id"];

impl Stateify for SocketAddrV6 {
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.save_struct("SocketAddrV6", V6_FIELDS, |s| {
            s.field("ip", self.ip())?;
            s.field("port", &self.port())?;
            s.field("flowinfo", &self.flowinfo())?;
            s.field("scope_id", &self.scope_id())
        })
    }
    fn load(l: &mut Loader) -> Result<Self> {
        l.load_struct("SocketAddrV6", V6_FIELDS, |st, l| {
            let (mut ip, mut port, mut flow, mut scope) = (None, None, None, None);
            while let Some(i) = st.next(l)? {
                match i {
                    0 => ip = Some(st.value::<Ipv6Addr>(l)?),
                    1 => port = Some(st.value::<u16>(l)?),
                    2 => flow = Some(st.value::<u32>(l)?),
                    _ => scope = Some(st.value::<u32>(l)?),
                }
            }
            Ok(SocketAddrV6::new(
                st.take(ip, 0)?,
                st.take(port, 1)?,
                st.take(flow, 2)?,
                st.take(scope, 3)?,
            ))
        })
    }
}

const SOCKET_VARIANTS: &[&str] = &["V4", "V6"];

impl Stateify for SocketAddr {
    fn save(&self, s: &mut Saver) -> Result<()> {
        match self {
            SocketAddr::V4(a) => s.save_variant("SocketAddr", SOCKET_VARIANTS, 0, |s| a.save(s)),
            SocketAddr::V6(a) => s.save_variant("SocketAddr", SOCKET_VARIANTS, 1, |s| a.save(s)),
        }
    }
    fn load(l: &mut Loader) -> Result<Self> {
        l.load_variant("SocketAddr", SOCKET_VARIANTS, |i, l| {
            Ok(if i == 0 {
                SocketAddr::V4(SocketAddrV4::load(l)?)
            } else {
                SocketAddr::V6(SocketAddrV6::load(l)?)
            })
        })
    }
}
