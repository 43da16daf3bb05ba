//! Matching stream types to Rust types: a struct's fields by name
//! ([`StructLoad`], with the per-type [`Layout`] cached), type references
//! checked against the Rust type's name.

use super::*;

/// A Rust type's member names, as the derive lists them.
type Members = &'static [&'static str];

/// How the stream's fields of one type map onto a Rust type's fields.
pub(super) struct Layout {
    /// The Rust type this stream type was matched to: its static name and
    /// member list (or plain field list) addresses, and the kind.
    pub(super) name_ptr: usize,
    pub(super) kind: DefKind,
    pub(super) members_ptr: usize,
    pub(super) exact: bool,
    /// Stream member index → Rust index, `u32::MAX` when unknown.
    pub(super) map: Box<[u32]>,
}

/// A struct type recently matched, to skip the checks on repeats.
#[derive(Clone, Copy)]
pub(super) struct RecentStruct {
    pub(super) ty: u32,
    pub(super) n: u32,
    pub(super) exact: bool,
    pub(super) name: usize,
    pub(super) fields: usize,
}

impl RecentStruct {
    /// An empty entry: no one-byte id matches its `ty`.
    pub(super) const NONE: RecentStruct = RecentStruct {
        ty: u32::MAX,
        n: 0,
        exact: false,
        name: 0,
        fields: 0,
    };
}

/// Reading one struct's fields, in stream order; see [`Loader::load_struct`].
pub struct StructLoad {
    pub(super) name: &'static str,
    pub(super) fields: &'static [&'static str],
    pub(super) ty: u32,
    pub(super) at: u32,
    pub(super) n: u32,
    pub(super) exact: bool,
    pub(super) ignore_unknown: bool,
}

impl StructLoad {
    /// Skip stream fields the type does not have instead of failing.
    pub fn ignore_unknown(&mut self) {
        self.ignore_unknown = true;
    }

    /// The Rust index (into the declared fields) of the next field in the
    /// stream, or `None` after the last one.
    #[inline]
    pub fn next(&mut self, l: &mut Loader) -> Result<Option<usize>> {
        if self.exact {
            if self.at == self.n {
                return Ok(None);
            }
            self.at += 1;
            return Ok(Some(self.at as usize - 1));
        }
        self.next_by_name(l)
    }

    fn next_by_name(&mut self, l: &mut Loader) -> Result<Option<usize>> {
        loop {
            if self.at == self.n {
                return Ok(None);
            }
            let j = self.at;
            self.at += 1;
            let idx = l.layouts[self.ty as usize]
                .as_ref()
                .map_or(u32::MAX, |lay| lay.map[j as usize]);
            if idx != u32::MAX {
                return Ok(Some(idx as usize));
            }
            let field = l.types.defs[self.ty as usize].members[j as usize];
            if !self.ignore_unknown {
                return Err(l.r.error(Error::new(ErrorKind::UnknownField {
                    ty: self.name.to_owned(),
                    field: field.to_owned(),
                })));
            }
            l.skip_value().map_err(|e| e.in_field(field))?;
        }
    }

    /// When the stream lists exactly the declared fields in declaration
    /// order and none was read yet, marks them all read and returns true:
    /// the caller then loads field `i` with [`StructLoad::value_at`] for
    /// `i` in `0..fields.len()`, in order.
    #[doc(hidden)]
    #[inline]
    pub fn take_in_order(&mut self) -> bool {
        if self.exact && self.at == 0 {
            self.at = self.n;
            true
        } else {
            false
        }
    }

    /// Loads declared field `i` after [`StructLoad::take_in_order`].
    #[doc(hidden)]
    #[inline]
    pub fn value_at<T: Stateify>(&mut self, l: &mut Loader, i: usize) -> Result<T> {
        match T::load(l) {
            Ok(v) => Ok(v),
            Err(e) => Err(e.in_field(self.fields[i])),
        }
    }

    /// As [`StructLoad::value_at`], through a custom function.
    #[doc(hidden)]
    pub fn value_with_at<T>(
        &mut self,
        l: &mut Loader,
        i: usize,
        f: impl FnOnce(&mut Loader) -> Result<T>,
    ) -> Result<T> {
        f(l).map_err(|e| e.in_field(self.fields[i]))
    }

    /// Loads the value of the field `next` returned.
    #[inline]
    pub fn value<T: Stateify>(&mut self, l: &mut Loader) -> Result<T> {
        match T::load(l) {
            Ok(v) => Ok(v),
            Err(e) => Err(self.in_current(l, e)),
        }
    }

    /// Loads the value of the field `next` returned through a custom
    /// function (`#[state(with)]`).
    pub fn value_with<T>(
        &mut self,
        l: &mut Loader,
        f: impl FnOnce(&mut Loader) -> Result<T>,
    ) -> Result<T> {
        match f(l) {
            Ok(v) => Ok(v),
            Err(e) => Err(self.in_current(l, e)),
        }
    }

    /// Skips the value of the field `next` returned.
    pub fn skip(&mut self, l: &mut Loader) -> Result<()> {
        l.skip_value().map_err(|e| self.in_current(l, e))
    }

    #[cold]
    fn in_current(&self, l: &Loader, e: Error) -> Error {
        let name = l.types.defs[self.ty as usize]
            .members
            .get((self.at as usize).wrapping_sub(1))
            .copied()
            .unwrap_or("?");
        e.in_field(name)
    }

    /// The loaded value of field `idx`, or a "missing field" error.
    #[inline]
    pub fn take<T>(&self, v: Option<T>, idx: usize) -> Result<T> {
        match v {
            Some(v) => Ok(v),
            None => Err(self.missing(idx)),
        }
    }

    /// The error for a field the stream did not have.
    #[cold]
    pub fn missing(&self, idx: usize) -> Error {
        Error::new(ErrorKind::MissingField {
            ty: self.name.to_owned(),
            field: self.fields.get(idx).copied().unwrap_or("?").to_owned(),
        })
    }

    /// The error for a field that appears twice in the stream.
    #[cold]
    pub fn duplicate(&self, idx: usize) -> Error {
        Error::invalid(format!(
            "field `{}` of `{}` appears twice",
            self.fields.get(idx).copied().unwrap_or("?"),
            self.name
        ))
    }
}

impl<'de, 'r> Loader<'de, 'r> {
    pub(super) fn type_ref(&mut self, tag: u8, name: &str, at: u64) -> Result<u32> {
        let ty = self.types.read_ref(&mut self.r, tag)?;
        self.sync_counters();
        let found = self.types.defs[ty as usize].name;
        if found != name {
            return Err(Error::mismatch(
                format!("`{name}`"),
                format!(
                    "`{found}` (if the type was renamed, #[state(type_name = \"{found}\")] \
                     keeps reading streams that use the old name)"
                ),
            )
            .at(at));
        }
        Ok(ty)
    }

    pub(super) fn sync_counters(&mut self) {
        while self.counters.names.len() < self.types.defs.len() {
            let def = &self.types.defs[self.counters.names.len()];
            self.counters.add_type(def.name, def.kind == DefKind::Dyn);
        }
    }

    /// The next type id, when it is one already matched to this Rust type
    /// (same static name and member list, same kind): consumes it and
    /// returns it with its `exact` flag, skipping the table lookup and the
    /// name comparison. Otherwise consumes nothing.
    #[inline]
    pub(super) fn known_type(
        &mut self,
        kind: DefKind,
        name: &'static str,
        members: &'static [&'static str],
    ) -> Option<(u32, bool)> {
        let (id, n) = self.r.peek_varint()?;
        let l = self.layouts.get(id as usize)?.as_ref()?;
        if l.members_ptr == members.as_ptr() as usize
            && l.name_ptr == name.as_ptr() as usize
            && l.kind == kind
        {
            self.r.advance(n);
            return Some((id as u32, l.exact));
        }
        None
    }

    /// The stream type id after a struct or enum tag, and whether its
    /// members are exactly the Rust type's: from the layouts already matched
    /// when it is one of them, otherwise read (with its definition on first
    /// use) and matched by name.
    #[inline]
    pub(super) fn resolve_type(
        &mut self,
        tag: u8,
        kind: DefKind,
        name: &'static str,
        members: &'static [&'static str],
        at: u64,
    ) -> Result<(u32, bool)> {
        if let Some(known) = self.known_type(kind, name, members) {
            return Ok(known);
        }
        let ty = self.type_ref(tag, name, at)?;
        Ok((ty, self.layout(ty, name, members)?))
    }

    /// Matches stream members to Rust members by name, once per type.
    #[inline]
    pub(super) fn layout(&mut self, ty: u32, name: &'static str, members: Members) -> Result<bool> {
        if let Some(Some(l)) = self.layouts.get(ty as usize) {
            if l.members_ptr == members.as_ptr() as usize {
                return Ok(l.exact);
            }
        }
        self.layout_slow(ty, name, members)
    }

    /// Records the layout matched for stream type `ty`.
    pub(super) fn store_layout(&mut self, ty: u32, layout: Layout) {
        if self.layouts.len() <= ty as usize {
            self.layouts.resize_with(ty as usize + 1, || None);
        }
        self.layouts[ty as usize] = Some(layout);
    }

    #[cold]
    pub(super) fn layout_slow(
        &mut self,
        ty: u32,
        name: &'static str,
        members: Members,
    ) -> Result<bool> {
        let def = &self.types.defs[ty as usize];
        let exact = def.members.len() == members.len()
            && def.members.iter().zip(members).all(|(a, b)| a == b);
        let mut map = vec![u32::MAX; def.members.len()].into_boxed_slice();
        let mut seen = vec![false; members.len()];
        for (j, m) in def.members.iter().enumerate() {
            if let Some(i) = members.iter().position(|f| f == m) {
                if seen[i] {
                    return Err(self.r.error(Error::invalid(format!(
                        "type `{}` lists member `{m}` twice",
                        def.name
                    ))));
                }
                seen[i] = true;
                map[j] = i as u32;
            }
        }
        let kind = def.kind;
        self.store_layout(
            ty,
            Layout {
                name_ptr: name.as_ptr() as usize,
                kind,
                members_ptr: members.as_ptr() as usize,
                exact,
                map,
            },
        );
        Ok(exact)
    }
}
