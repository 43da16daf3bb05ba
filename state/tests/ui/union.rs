use stateify::Stateify;

#[derive(Stateify)]
union U {
    a: u32,
    b: f32,
}

fn main() {}
