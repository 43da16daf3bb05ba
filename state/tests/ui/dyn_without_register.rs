// A trait object whose trait has no `register_dyn!`: the error names it.
use std::rc::Rc;

use stateify::{AsAny, Stateify};

trait Rule: AsAny {}

#[derive(Stateify)]
struct Game {
    rules: Vec<Box<dyn Rule>>,
    first: Rc<dyn Rule>,
}

fn main() {}
