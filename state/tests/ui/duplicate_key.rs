use stateify::Stateify;

#[derive(Stateify)]
#[state(type_name = "A", type_name = "B")]
struct S {
    #[state(nosave, nosave)]
    a: u32,
}

fn main() {}
