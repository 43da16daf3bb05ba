//! Shared objects: `OBJ`/`REF` through the object table, `OBJ_CYCLIC`
//! built with `new_cyclic` (a load error inside leaves it through a private
//! unwind payload), objects announced by a forward weak reference (`FWD`,
//! suspended until their `DEF`), and weak references.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use super::*;
use crate::error::Segment;
use crate::suspend::{PendingObject, Suspended};

/// The unwind payload that carries a load error out of `new_cyclic`.
struct Sentinel;

/// At most this many objects may be announced and not yet defined at once
/// (each waits on a stack of its own; see `suspend.rs`), and at most one
/// per 16 bytes of input beyond the first 256.
pub(super) const MAX_PENDING: usize = 16 << 10;

#[cold]
fn skipped(id: u64, at: u64) -> Error {
    Error::invalid(format!(
        "reference to object #{id}, which was inside a skipped field"
    ))
    .at(at)
}

#[cold]
fn undefined(id: u64, at: u64) -> Error {
    Error::invalid(format!("reference to undefined object #{id}")).at(at)
}

#[cold]
fn other_type<P>(id: u64, at: u64) -> Error {
    Error::mismatch(
        std::any::type_name::<P>(),
        format!("object #{id} of another type"),
    )
    .at(at)
}

impl<'de, 'r> Loader<'de, 'r> {
    /// Loads a strong shared pointer: a new object, or a reference to one.
    pub fn load_shared<P: SharedPtr>(&mut self) -> Result<P>
    where
        P::Target: Stateify,
    {
        let at = self.r.offset();
        match self.tag()? {
            wire::OBJ => self.define(|l| l.nest_object(P::Target::load).map(P::new), P::erase),
            wire::OBJ_CYCLIC => self.load_cyclic::<P>(),
            wire::REF => self.strong_ref(at, P::unerase),
            wire::DEF => self.load_definition::<P>(at),
            t => Err(self.mismatch("shared object", t, at)),
        }
    }

    /// The value of an object announced earlier (`DEF id`, its tag read).
    #[cold]
    #[inline(never)]
    pub(super) fn load_definition<P: SharedPtr>(&mut self, at: u64) -> Result<P>
    where
        P::Target: Stateify,
    {
        let (id, weak, pending) = self.take_pending(at)?;
        let suspended = match pending.into_any().downcast::<Suspended<P>>() {
            Ok(s) => s,
            Err(_) => return Err(other_type::<P>(id as u64, at)),
        };
        // Back-edges inside its value get the weak handle, as for OBJ_CYCLIC.
        self.objects[id] = ObjSlot::Building(Some(weak));
        let value = self
            .load_object_value::<P>()
            .map_err(|e| e.in_segment(Segment::Object(id as u64)))?;
        let p = self.finish_suspended(*suspended, value)?;
        self.objects[id] = p.erase();
        Ok(p)
    }

    /// Finishes a suspended construction with its loaded value.
    pub(crate) fn finish_suspended<P: SharedPtr>(
        &mut self,
        s: Suspended<P>,
        value: P::Target,
    ) -> Result<P>
    where
        P::Target: Stateify,
    {
        s.finish(value, &mut self.stacks)
    }

    /// Reads the id of a `DEF` (its tag at `at` read) and takes the
    /// announced object out of the table.
    pub(super) fn take_pending(
        &mut self,
        at: u64,
    ) -> Result<(usize, ErasedWeak, Box<dyn PendingObject>)> {
        if self.version < 2 {
            return Err(Error::invalid(format!(
                "{} in a graph of format version {}",
                wire::tag_name(wire::DEF),
                self.version
            ))
            .at(at));
        }
        let id = self.r.varint()?;
        let slot = match self.objects.get_mut(id as usize) {
            Some(slot @ ObjSlot::Pending(..)) => std::mem::replace(slot, ObjSlot::Building(None)),
            Some(_) => {
                return Err(Error::invalid(format!(
                    "value for object #{id}, which was not announced or already has one"
                ))
                .at(at))
            }
            None => return Err(undefined(id, at)),
        };
        let ObjSlot::Pending(pending) = slot else {
            return Err(Error::custom("internal: announced object vanished").at(at));
        };
        self.pending -= 1;
        let (weak, pending) = *pending;
        Ok((id as usize, weak, pending))
    }

    /// A weak reference that announces a new object (`FWD`, not yet read):
    /// its construction starts suspended and its value comes later.
    #[cold]
    #[inline(never)]
    pub(super) fn announce<P: SharedPtr>(&mut self) -> Result<P::Weak>
    where
        P::Target: Stateify,
    {
        let at = self.r.offset();
        self.r.u8()?;
        if self.version < 2 {
            return Err(self.mismatch("shared object", wire::FWD, at));
        }
        if self.pending >= self.max_pending {
            return Err(Error::invalid(format!(
                "more than {} objects announced and not yet defined",
                self.max_pending
            ))
            .at(at));
        }
        let (suspended, weak) = Suspended::<P>::start(&mut self.stacks).map_err(|e| e.at(at))?;
        self.objects.push(ObjSlot::Pending(Box::new((
            ErasedWeak::new::<P>(&weak),
            Box::new(suspended),
        ))));
        self.pending += 1;
        Ok(weak)
    }

    /// The value of a shared object.
    pub(crate) fn load_object_value<P: SharedPtr>(&mut self) -> Result<P::Target>
    where
        P::Target: Stateify,
    {
        self.nest_object(P::Target::load)
    }

    /// After the root of a version 2 graph: the values of announced objects
    /// that no strong reference reached.
    pub(super) fn load_deferred(&mut self) -> Result<()> {
        while self.r.remaining() != 0 {
            let at = self.r.offset();
            let tag = self.tag()?;
            if tag != wire::DEF {
                return Err(self.mismatch(
                    "the value of an announced object after the root",
                    tag,
                    at,
                ));
            }
            let (id, weak, pending) = self.take_pending(at)?;
            self.objects[id] = ObjSlot::Building(Some(weak));
            let built = pending
                .finish_erased(self)
                .map_err(|e| e.in_segment(Segment::Object(id as u64)))?;
            self.objects[id] = built;
        }
        if self.pending != 0 {
            let id = self
                .objects
                .iter()
                .position(|s| matches!(s, ObjSlot::Pending(..)))
                .unwrap_or(0);
            return Err(self.r.error(Error::invalid(format!(
                "object #{id} was announced by a weak reference and never given a value"
            ))));
        }
        Ok(())
    }

    /// Loads a strong shared pointer built by `build` (trait objects): a new
    /// object, or a reference to one. Weak back-edges into such objects are
    /// not supported.
    pub fn load_shared_with<P: Clone + 'static>(
        &mut self,
        build: impl FnOnce(&mut Self) -> Result<P>,
    ) -> Result<P> {
        let at = self.r.offset();
        match self.tag()? {
            wire::OBJ => self.define(
                |l| l.nest_object(build),
                |p| ObjSlot::Built(Box::new(p.clone())),
            ),
            wire::REF => self.strong_ref(at, |slot| match slot {
                ObjSlot::Built(b) => b.downcast_ref::<P>().cloned(),
                _ => None,
            }),
            wire::OBJ_CYCLIC => {
                Err(Error::invalid("weak back-edges into a trait object are not supported").at(at))
            }
            t => Err(self.mismatch("shared object", t, at)),
        }
    }

    /// Builds the object whose `OBJ` tag was just read and records it.
    pub(super) fn define<P>(
        &mut self,
        build: impl FnOnce(&mut Self) -> Result<P>,
        erase: impl FnOnce(&P) -> ObjSlot,
    ) -> Result<P> {
        let id = self.objects.len();
        self.objects.push(ObjSlot::Building(None));
        let p = build(self).map_err(|e| e.in_segment(Segment::Object(id as u64)))?;
        self.objects[id] = erase(&p);
        Ok(p)
    }

    /// Resolves the `REF id` whose tag (at `at`) was just read.
    pub(super) fn strong_ref<P>(
        &mut self,
        at: u64,
        unerase: impl FnOnce(&ObjSlot) -> Option<P>,
    ) -> Result<P> {
        let id = self.r.varint()?;
        match self.objects.get(id as usize) {
            Some(slot @ (ObjSlot::Built(_) | ObjSlot::BuiltRc(_))) => {
                unerase(slot).ok_or_else(|| other_type::<P>(id, at))
            }
            Some(ObjSlot::Building(_)) => Err(Error::new(ErrorKind::StrongCycle(id)).at(at)),
            Some(ObjSlot::Pending(..)) => Err(Error::invalid(format!(
                "strong reference to object #{id} before its value"
            ))
            .at(at)),
            Some(ObjSlot::Skipped) => Err(skipped(id, at)),
            None => Err(undefined(id, at)),
        }
    }

    /// The error for a trait-object type name missing from the registry.
    #[cold]
    pub fn unknown_dyn(&self, name: &str, tr: &str) -> Error {
        self.r.error(Error::invalid(format!(
            "`{name}` is not registered for `dyn {tr}` (register_dyn!)"
        )))
    }

    #[cfg(panic = "unwind")]
    pub(super) fn load_cyclic<P: SharedPtr>(&mut self) -> Result<P>
    where
        P::Target: Stateify,
    {
        let id = self.objects.len();
        self.objects.push(ObjSlot::Building(None));
        let depth = self.depth;
        let mut stash: Option<Error> = None;
        let built = catch_unwind(AssertUnwindSafe(|| {
            P::new_cyclic(|weak| {
                self.objects[id] = ObjSlot::Building(Some(ErasedWeak::new::<P>(weak)));
                match self.nest_object(|l| P::Target::load(l)) {
                    Ok(v) => v,
                    Err(e) => {
                        stash = Some(e);
                        // Leave new_cyclic without a value: its allocation is
                        // freed and the weak handles stay dead. No panic hook runs.
                        resume_unwind(Box::new(Sentinel))
                    }
                }
            })
        }));
        match built {
            Ok(p) => {
                self.objects[id] = p.erase();
                Ok(p)
            }
            Err(payload) if payload.is::<Sentinel>() => {
                self.depth = depth;
                let e = stash.unwrap_or_else(|| Error::custom("cyclic construction failed"));
                Err(e.in_segment(Segment::Object(id as u64)))
            }
            Err(payload) => resume_unwind(payload),
        }
    }

    #[cfg(not(panic = "unwind"))]
    pub(super) fn load_cyclic<P: SharedPtr>(&mut self) -> Result<P>
    where
        P::Target: Stateify,
    {
        Err(self.r.error(Error::custom(
            "weak back-edges into a shared object need panic = \"unwind\" to be loaded safely",
        )))
    }

    /// Loads a weak pointer.
    pub fn load_weak<P: SharedPtr>(&mut self) -> Result<P::Weak>
    where
        P::Target: Stateify,
    {
        let at = self.r.offset();
        match self.tag()? {
            wire::WEAK_DEAD => return Ok(P::dead()),
            wire::WEAK => {}
            t => return Err(self.mismatch("weak reference", t, at)),
        }
        let at = self.r.offset();
        match self.r.peek()? {
            wire::REF => {}
            wire::FWD => return self.announce::<P>(),
            _ => return Ok(self.load_shared::<P>()?.downgrade()),
        }
        self.r.u8()?;
        let id = self.r.varint()?;
        match self.objects.get(id as usize) {
            Some(slot @ (ObjSlot::Built(_) | ObjSlot::BuiltRc(_))) => match P::unerase(slot) {
                Some(p) => Ok(p.downgrade()),
                None => Err(other_type::<P>(id, at)),
            },
            Some(ObjSlot::Building(Some(w))) => {
                w.get::<P>().ok_or_else(|| other_type::<P::Weak>(id, at))
            }
            Some(ObjSlot::Pending(p)) => {
                p.0.get::<P>().ok_or_else(|| other_type::<P::Weak>(id, at))
            }
            Some(ObjSlot::Building(None)) => Err(Error::invalid(format!(
                "weak reference to object #{id} while it is built, but it is not marked cyclic"
            ))
            .at(at)),
            Some(ObjSlot::Skipped) => Err(skipped(id, at)),
            None => Err(undefined(id, at)),
        }
    }
}
