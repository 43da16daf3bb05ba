use stateify::Stateify;

struct NoDefault;

#[derive(Stateify)]
struct S {
    a: u32,
    #[state(nosave)]
    b: NoDefault,
}

fn main() {}
