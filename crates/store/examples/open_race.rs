use std::sync::{Arc, Barrier};
fn main() {
    let mut fails = 0;
    for round in 0..300 {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join("s.sqlite"));
        let barrier = Arc::new(Barrier::new(3));
        let hs: Vec<_> = (0..3).map(|_| { let p = path.clone(); let b = barrier.clone(); std::thread::spawn(move || { b.wait(); mesalab_store::Store::open(&p).map(|_| ()) }) }).collect();
        for h in hs { if let Err(e) = h.join().unwrap() { fails += 1; if fails < 5 { eprintln!("round {round}: {e:?}\n  {e}"); } } }
    }
    eprintln!("fails = {fails}");
}
