//! Small std value types: `Duration`, `PathBuf`, IP and socket addresses.
//! Addresses are written as their text form (readable in `pretty` output),
//! except `SocketAddrV6`, whose flow info and scope id need fields.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::wire::Packed;
use crate::{Loader, Saver, Stateify};

const DURATION_FIELDS: &[&str] = &["secs", "nanos"];

impl Stateify for Duration {
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.save_struct("Duration", DURATION_FIELDS, |s| {
            s.field("secs", &self.as_secs())?;
            s.field("nanos", &self.subsec_nanos())
        })
    }
    fn load(l: &mut Loader) -> Result<Self> {
        let (mut secs, mut nanos) = (None, None);
        l.load_struct("Duration", DURATION_FIELDS, |st, l| {
            while let Some(i) = st.next(l)? {
                match i {
                    0 => secs = Some(st.value::<u64>(l)?),
                    _ => nanos = Some(st.value::<u32>(l)?),
                }
            }
            let (secs, nanos) = (st.take(secs, 0)?, st.take(nanos, 1)?);
            if nanos >= 1_000_000_000 {
                return Err(
                    Error::invalid(format!("{nanos} nanoseconds is not below one second"))
                        .in_field("nanos"),
                );
            }
            Ok(Duration::new(secs, nanos))
        })
    }
}

impl Stateify for PathBuf {
    fn save(&self, s: &mut Saver) -> Result<()> {
        match self.to_str() {
            Some(text) => s.write_str(text),
            None => {
                #[cfg(unix)]
                {
                    use std::os::unix::ffi::OsStrExt;
                    s.write_packed(Packed::U8, [self.as_os_str().as_bytes(), &[]]);
                }
                #[cfg(not(unix))]
                return Err(Error::custom("path is not valid Unicode"));
            }
        }
        Ok(())
    }
    fn load(l: &mut Loader) -> Result<Self> {
        if let Some(bytes) = l.read_packed(Packed::U8)? {
            #[cfg(unix)]
            {
                use std::os::unix::ffi::OsStrExt;
                return Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)));
            }
            #[cfg(not(unix))]
            return String::from_utf8(bytes.to_vec())
                .map(PathBuf::from)
                .map_err(|_| Error::invalid("path is not valid Unicode"));
        }
        l.read_str().map(PathBuf::from)
    }
}

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
