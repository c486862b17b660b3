//! `mesalab serve`: parses its flags, starts `mesalab_serve::Server` and says where it listens.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use anyhow::anyhow;
use mesalab_serve::{Options, ServeError, Server};

use crate::Failure;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, default_value_t = mesalab_serve::DEFAULT_PORT)]
    port: u16,
    /// Address to bind (default 127.0.0.1, this machine only). Any other address serves every run
    /// in the store, unauthenticated, to whoever can reach it.
    #[arg(long, value_name = "IP")]
    host: Option<IpAddr>,
}

pub fn serve(store_flag: Option<&Path>, args: &ServeArgs) -> Result<(), Failure> {
    let mut opts = Options::new(mesalab_store::resolve_path(store_flag));
    opts.port = args.port;
    if let Some(host) = args.host {
        opts.host = host;
    }
    let server = Server::bind(&opts).map_err(|e| match e {
        ServeError::Store(_) | ServeError::Bind { .. } => Failure::Input(anyhow!(e)),
        ServeError::Io(_) => Failure::Run(anyhow!(e)),
    })?;
    if mesalab_serve::is_exposed(opts.host) {
        eprintln!(
            "warning: listening on {}, beyond this machine: anyone who can reach it can read every run in \
             the store (there is no authentication). Use the default 127.0.0.1 unless you mean it.",
            opts.host
        );
    }
    println!("serving {} (store {}, read-only; Ctrl-C stops it)", server.url(), opts.store.display());
    let _ = std::io::stdout().flush();
    server.run().map_err(|e| Failure::Run(anyhow!(e)))
}
