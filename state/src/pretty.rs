//! Renders encoded streams as text with type and field names, needing no
//! Rust types: everything comes from the stream's tags and type table.
//!
//! ```
//! let bytes = stateify::to_vec(&(1u8, "hi".to_string(), vec![1u16, 2])).unwrap();
//! let text = stateify::pretty::to_string(&bytes).unwrap();
//! assert!(text.contains("\"hi\""));
//! ```
//!
//! Shared objects print in full where first met (`#3 = ...`) and as `&#3`
//! afterwards; weak references as `weak &#3`. Long packed arrays are cut
//! after a preview, with their length shown.

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::record::decode_header;
use crate::table::TypeTable;
use crate::walk::{walk_graph, Leaf, Open, Slot, Visitor};
use crate::wire::Packed;

/// Renders every record of a stream: graphs in full, raw records as their
/// length and offset.
pub fn to_string(bytes: &[u8]) -> Result<String, Error> {
    let mut out = String::new();
    let mut pos = 0usize;
    let mut graph = 0;
    while pos < bytes.len() {
        let (len, object, hlen) = decode_header(&bytes[pos..]).map_err(|e| e.at(pos as u64))?;
        let body_start = pos + hlen;
        if len > (bytes.len() - body_start) as u64 {
            return Err(Error::invalid(format!(
                "record at byte {pos} claims {len} bytes, {} left",
                bytes.len() - body_start
            ))
            .at(pos as u64));
        }
        let body = &bytes[body_start..body_start + len as usize];
        if object {
            let _ = write!(out, "graph #{graph} ({len} bytes at {pos}): ");
            render_graph(body, &mut out).map_err(|e| e.at(body_start as u64))?;
            out.push('\n');
            graph += 1;
        } else {
            let _ = writeln!(out, "raw record ({len} bytes at {pos})");
        }
        pos = body_start + len as usize;
    }
    Ok(out)
}

/// Renders the payload of one graph record (after its header).
pub fn render_graph(payload: &[u8], out: &mut String) -> Result<(), Error> {
    let mut p = Printer {
        out,
        stack: Vec::new(),
        indent: 0,
        trailer: false,
        pending: None,
    };
    walk_graph(payload, &mut p, crate::DEFAULT_MAX_DEPTH).map(|_| ())
}

/// Deepest indentation, in levels.
const MAX_INDENT: usize = 40;

/// Longest type, field or variant name printed, in bytes; longer names are
/// cut with `…`. With the capped indentation this bounds the text printed per
/// input byte, so a stream cannot amplify into huge output by referring to
/// one long name many times.
const MAX_NAME: usize = 64;

/// A name as printed: cut at `MAX_NAME` bytes, on a character boundary.
fn name(s: &str) -> std::borrow::Cow<'_, str> {
    if s.len() <= MAX_NAME {
        return s.into();
    }
    let mut end = MAX_NAME;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end]).into()
}

/// How many elements of a packed array are shown.
const PREVIEW: usize = 16;

struct Printer<'o> {
    out: &'o mut String,
    /// The open composites, innermost last.
    stack: Vec<Frame>,
    /// Open composites that indent their children (wrappers such as `Some`
    /// or an object definition print their one child inline).
    indent: usize,
    /// Past the root: values of announced objects, one a line.
    trailer: bool,
    /// A variant or trait object whose payload is next: its name is
    /// printed, the payload decides what follows (see `Printer::payload`).
    pending: Option<Pending>,
}

struct Frame {
    /// Children printed so far.
    n: usize,
    /// Printed at the close.
    closer: &'static str,
    /// Children go on their own indented lines.
    indents: bool,
    /// Struct fields print without their names (a tuple variant's payload).
    unnamed: bool,
}

#[derive(Clone, Copy)]
enum Pending {
    /// `Enum::Variant` printed; its payload, if a struct, is `Enum::Variant`.
    Variant(u32, u32),
    /// `dyn Name` printed; its payload, if a struct, is `Name`.
    Dyn(u32),
}

impl Printer<'_> {
    /// Indentation stops growing at `MAX_INDENT` levels, so the output of a
    /// deeply nested graph stays linear in its size.
    fn newline(&mut self) {
        self.out.push('\n');
        for _ in 0..self.indent.min(MAX_INDENT) {
            self.out.push_str("  ");
        }
    }

    fn push(&mut self, closer: &'static str, indents: bool, unnamed: bool) {
        self.stack.push(Frame {
            n: 0,
            closer,
            indents,
            unnamed,
        });
        if indents {
            self.indent += 1;
        }
    }

    /// Starts the payload of a pending variant or trait object, before the
    /// payload itself prints. A payload that is the variant's own struct
    /// (`Enum::Variant`, what derived enums write) loses its repeated name:
    /// `Event::Join { id: 1 }`, `Bound::Included(1)`, `Pair::Two(1, 2)`; a
    /// unit payload prints as nothing (`Enum::Variant`); anything else goes
    /// in parentheses. A trait object's struct prints as `dyn Name { … }`.
    /// Returns what the payload opens with in place of its own opening, if
    /// it is such a struct.
    fn payload(&mut self, open: Option<Open>, types: &TypeTable<'_>) -> Option<Frame> {
        let pending = self.pending.take()?;
        let own = match (pending, open) {
            (Pending::Variant(ty, i), Some(Open::Struct(st))) => {
                let (e, s) = (&types.defs[ty as usize], &types.defs[st as usize]);
                let v = e.members.get(i as usize).copied().unwrap_or("");
                s.name.len() == e.name.len() + 2 + v.len()
                    && s.name.starts_with(e.name)
                    && s.name[e.name.len()..].starts_with("::")
                    && s.name.ends_with(v)
            }
            (Pending::Dyn(ty), Some(Open::Struct(st))) => {
                types.defs[ty as usize].name == types.defs[st as usize].name
            }
            _ => false,
        };
        let frame = self.stack.last_mut()?;
        if !own {
            if let Pending::Variant(..) = pending {
                self.out.push('(');
                frame.closer = ")";
            }
            return None;
        }
        let Some(Open::Struct(st)) = open else {
            return None;
        };
        let members = &types.defs[st as usize].members;
        let tuple = matches!(pending, Pending::Variant(..))
            && members.iter().enumerate().all(|(k, m)| m.parse() == Ok(k));
        Some(match (tuple, members.len()) {
            (true, 1) => {
                self.out.push('(');
                Frame {
                    n: 0,
                    closer: ")",
                    indents: false,
                    unnamed: true,
                }
            }
            (true, _) => {
                self.out.push('(');
                Frame {
                    n: 0,
                    closer: ")",
                    indents: true,
                    unnamed: true,
                }
            }
            (false, _) => {
                if let Pending::Variant(..) = pending {
                    self.out.push(' ');
                }
                self.out.push('{');
                Frame {
                    n: 0,
                    closer: "}",
                    indents: true,
                    unnamed: false,
                }
            }
        })
    }
}

/// A float from its bits: as Rust prints it, a NaN other than the
/// canonical one with its bits.
macro_rules! float_text {
    ($($name:ident($float:ty, $bits:ty, $digits:literal)),*) => {$(
        pub(crate) fn $name(bits: $bits) -> String {
            let f = <$float>::from_bits(bits);
            if f.is_nan() && bits != <$float>::NAN.to_bits() {
                format!(concat!("NaN(0x{:0", $digits, "x})"), bits)
            } else {
                format!("{f:?}")
            }
        }
    )*};
}

float_text!(float32(f32, u32, 8), float64(f64, u64, 16));

/// The text of one leaf value, as `pretty` and the CLI show it.
pub(crate) fn leaf_text(leaf: Leaf<'_>, o: &mut String) {
    let _ = match leaf {
        Leaf::Unit => write!(o, "()"),
        Leaf::Bool(b) => write!(o, "{b}"),
        Leaf::UInt(v) => write!(o, "{v}"),
        Leaf::NInt(n) => write!(o, "{}", -1 - n as i128),
        Leaf::U128(v) => write!(o, "{v}"),
        Leaf::I128(v) => write!(o, "{v}"),
        Leaf::F32(b) => write!(o, "{}", float32(b)),
        Leaf::F64(b) => write!(o, "{}", float64(b)),
        Leaf::Char(c) => match char::from_u32(c) {
            Some(c) => write!(o, "{c:?}"),
            None => write!(o, "<invalid char {c:#x}>"),
        },
        Leaf::Str(s) => write!(o, "{s:?}"),
        Leaf::Packed(kind, bytes) => {
            packed(kind, bytes, o);
            Ok(())
        }
        Leaf::None => write!(o, "None"),
        Leaf::Ref(id) => write!(o, "&#{id}"),
        Leaf::WeakDead => write!(o, "weak (dead)"),
        Leaf::Announced(id) => write!(o, "#{id} (value below)"),
    };
}

pub(crate) fn packed(kind: Packed, bytes: &[u8], out: &mut String) {
    let n = bytes.len() / kind.size();
    let _ = write!(out, "[{}; {n}] ", kind.name());
    if kind == Packed::U8 {
        out.push_str("0x");
        for b in bytes.iter().take(PREVIEW * 4) {
            let _ = write!(out, "{b:02x}");
        }
        if n > PREVIEW * 4 {
            out.push('…');
        }
        return;
    }
    out.push('[');
    for (i, c) in bytes.chunks_exact(kind.size()).take(PREVIEW).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        leaf_text(crate::walk::number(kind, c), out);
    }
    if n > PREVIEW {
        out.push_str(", …");
    }
    out.push(']');
}

impl<'de> Visitor<'de> for Printer<'_> {
    fn leaf(&mut self, leaf: Leaf<'de>, types: &TypeTable<'de>) -> Result<()> {
        if self.pending.is_some() {
            if let Leaf::Unit = leaf {
                // A unit variant prints as `Enum::Variant`, not `Enum::Variant(())`.
                self.pending = None;
                return Ok(());
            }
            self.payload(None, types);
        }
        leaf_text(leaf, self.out);
        Ok(())
    }

    fn after_root(&mut self) -> Result<()> {
        self.out
            .push_str("\nobjects reached only through weak references:");
        self.trailer = true;
        self.indent = 1;
        Ok(())
    }

    fn open(&mut self, open: Open, types: &TypeTable<'de>) -> Result<()> {
        if self.trailer && self.stack.is_empty() {
            self.out.push_str("\n  ");
        }
        if self.pending.is_some() {
            if let Some(frame) = self.payload(Some(open), types) {
                if frame.indents {
                    self.indent += 1;
                }
                self.stack.push(frame);
                return Ok(());
            }
        }
        let o = &mut *self.out;
        let _ = match open {
            Open::Seq(_) => write!(o, "["),
            Open::Tuple(_) => write!(o, "("),
            Open::Map(_) => write!(o, "{{"),
            Open::Struct(ty) => write!(o, "{} {{", name(types.defs[ty as usize].name)),
            Open::Some => write!(o, "Some("),
            Open::Variant(ty, i) => {
                let def = &types.defs[ty as usize];
                write!(o, "{}::{}", name(def.name), name(def.members[i as usize]))
            }
            Open::Object { id, cyclic } => {
                write!(o, "#{id}{} = ", if cyclic { " (cyclic)" } else { "" })
            }
            Open::Weak => write!(o, "weak "),
            Open::Dyn(ty) => write!(o, "dyn {} ", name(types.defs[ty as usize].name)),
        };
        match open {
            Open::Seq(_) => self.push("]", true, false),
            Open::Tuple(_) => self.push(")", true, false),
            Open::Map(_) | Open::Struct(_) => self.push("}", true, false),
            Open::Some => self.push(")", false, false),
            Open::Variant(ty, i) => {
                self.push("", false, false);
                self.pending = Some(Pending::Variant(ty, i));
            }
            Open::Dyn(ty) => {
                self.push("", false, false);
                self.pending = Some(Pending::Dyn(ty));
            }
            Open::Object { .. } | Open::Weak => self.push("", false, false),
        }
        Ok(())
    }

    fn slot(&mut self, slot: Slot, types: &TypeTable<'de>) -> Result<()> {
        if let Slot::Value(_) = slot {
            self.out.push_str(" => ");
            return Ok(());
        }
        let (indents, unnamed) = match self.stack.last_mut() {
            Some(f) => {
                if f.n > 0 {
                    self.out.push(',');
                    if !f.indents {
                        self.out.push(' ');
                    }
                }
                f.n += 1;
                (f.indents, f.unnamed)
            }
            None => (true, false),
        };
        if indents {
            self.newline();
        }
        if let (Slot::Field(ty, i), false) = (slot, unnamed) {
            let _ = write!(self.out, "{}: ", name(types.defs[ty as usize].members[i]));
        }
        Ok(())
    }

    fn close(&mut self, _open: Open) -> Result<()> {
        // A variant or trait object closed with its payload unprinted (a
        // malformed stream ends early) leaves nothing pending.
        self.pending = None;
        let Some(f) = self.stack.pop() else {
            return Ok(());
        };
        if f.indents {
            self.indent -= 1;
            if f.n > 0 {
                self.out.push(',');
                self.newline();
            }
        }
        self.out.push_str(f.closer);
        Ok(())
    }
}
