//! Boxes and shared pointers. `Rc`/`Arc` keep their identity through the
//! object table (keyed by allocation address and type); `Weak`s come back
//! live when their target is in the graph, dead when it was gone.

use std::rc::Rc;
use std::sync::Arc;

use crate::error::Result;
use crate::{Loader, Saver, Stateify};

impl<T: Stateify> Stateify for Box<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.nest(|s| (**self).save(s))
    }
    fn load(l: &mut Loader) -> Result<Self> {
        l.nest(T::load).map(Box::new)
    }
}

impl<T: Stateify + 'static> Stateify for Rc<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.save_shared(Rc::as_ptr(self) as *const (), &**self)
    }
    fn load(l: &mut Loader) -> Result<Self> {
        l.load_shared::<Rc<T>>()
    }
}

impl<T: Stateify + 'static> Stateify for Arc<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.save_shared(Arc::as_ptr(self) as *const (), &**self)
    }
    fn load(l: &mut Loader) -> Result<Self> {
        l.load_shared::<Arc<T>>()
    }
}

impl<T: Stateify + 'static> Stateify for std::rc::Weak<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.save_weak(self.as_ptr() as *const (), || self.upgrade())
    }
    fn load(l: &mut Loader) -> Result<Self> {
        l.load_weak::<Rc<T>>()
    }
}

impl<T: Stateify + 'static> Stateify for std::sync::Weak<T> {
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.save_weak(self.as_ptr() as *const (), || self.upgrade())
    }
    fn load(l: &mut Loader) -> Result<Self> {
        l.load_weak::<Arc<T>>()
    }
}
