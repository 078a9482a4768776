fn main() {
    println!("longshore {}", env!("CARGO_PKG_VERSION"));
}
