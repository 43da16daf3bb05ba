use stateify::Stateify;

#[derive(Stateify)]
#[state(afterload)]
struct S {
    #[state(no_save)]
    a: u32,
}

fn main() {}
