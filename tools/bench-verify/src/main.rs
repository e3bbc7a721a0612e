//! Benchmark 2 of `scripts/bench`: Sign-In with Ethereum verification through the embedded
//! host (the `auth` Wasm component behind `POST /api/v1/auth/verify`) against the same
//! verification done natively, in one run, on the same machine, against the same anvil node.
//!
//! `bench-verify <host-base-url> <anvil-rpc-url> [count=2000] [concurrency=4]`
//!
//! - **native**: for each of `count` messages (signed beforehand with anvil's dev keys, EIP-191
//!   `personal_sign`), the calls the component makes — `signin::check_message`,
//!   `eip191::decode_signature_hex`, `eip1271::verify_signature` — with a [`ChainReader`] that
//!   does the real JSON-RPC `eth_getCode` to anvil over a keep-alive HTTP connection (one call
//!   per verification, as in the component for an EOA).
//! - **host**: `count` nonces from `POST /api/v1/auth/nonce` and the signatures are made first,
//!   untimed; then only the `POST /api/v1/auth/verify` requests are timed, each of which must
//!   answer 200. Besides the calls above the component also reads and writes its rate-limit
//!   windows (key-value), looks up and burns the nonce (SQLite) and issues the session (JWT).
//!
//! Both sides run `concurrency` workers, each with its own keep-alive connection, after a
//! warm-up that is not measured. Prints verifications per second, wall time per verification,
//! p50 and p99 latency, and the ratio of host to native time per verification (target: at most
//! 3). For scale it also prints, outside the ratio, the native verification without its RPC and
//! the host's nonce requests. Exits non-zero if any request or verification fails; a missed
//! target is reported, not an error.

use std::cell::Cell;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy_primitives::{hex, Address};
use k256::ecdsa::SigningKey;
use serde_json::{json, Value};
use streamgate_core::eip1271::{verify_signature, SignerKind};
use streamgate_core::eip191::{decode_signature_hex, personal_sign_digest, recover_personal_sign};
use streamgate_core::nonce::{generate_nonce, NONCE_RANDOM_BYTES, NONCE_TTL_SECS};
use streamgate_core::rpc::{self, Bytes, ChainReader, RpcError};
use streamgate_core::signin::check_message;
use streamgate_core::siwe::{rfc3339_utc, SiweConfig};

/// anvil's (and hardhat's) well-known development keys, accounts 0 to 9.
const ANVIL_KEYS: [&str; 10] = [
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
];

/// The host's verify time per verification may be at most this multiple of the native one.
const TARGET_RATIO: f64 = 3.0;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    host: String,
    rpc: String,
    count: usize,
    concurrency: usize,
}

fn parse_args() -> Result<Args, String> {
    let usage = "usage: bench-verify <host-base-url> <anvil-rpc-url> [count=2000] [concurrency=4]";
    let mut args = std::env::args().skip(1);
    let host = args.next().ok_or(usage)?.trim_end_matches('/').to_string();
    let rpc = args.next().ok_or(usage)?;
    let number = |v: Option<String>, default: usize| -> Result<usize, String> {
        match v {
            None => Ok(default),
            Some(s) => s
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("`{s}` is not a positive number; {usage}")),
        }
    };
    let count = number(args.next(), 2000)?;
    let concurrency = number(args.next(), 4)?;
    if args.next().is_some() {
        return Err(usage.into());
    }
    if !host.starts_with("http://") {
        return Err(format!(
            "the host URL must be http://host:port, not `{host}`"
        ));
    }
    Ok(Args {
        host,
        rpc,
        count,
        concurrency,
    })
}

struct Wallet {
    key: SigningKey,
    address: Address,
}

impl Wallet {
    fn from_hex(key_hex: &str) -> Self {
        let bytes = hex::decode(key_hex).expect("a constant hex key");
        let key = SigningKey::from_slice(&bytes).expect("a valid secp256k1 key");
        let point = key.verifying_key().to_sec1_point(false);
        // An uncompressed SEC1 point is 0x04 || x || y.
        let address = Address::from_raw_public_key(&point.as_bytes()[1..]);
        Self { key, address }
    }

    /// `personal_sign` as a wallet does it: `0x` + hex of `r || s || v`, v in {27, 28}.
    fn personal_sign(&self, message: &str) -> String {
        let digest = personal_sign_digest(message.as_bytes());
        let (signature, recovery_id) = self.key.sign_prehash_recoverable(digest.as_slice());
        let mut bytes = signature.to_bytes().to_vec();
        bytes.push(27 + recovery_id.to_byte());
        hex::encode_prefixed(bytes)
    }
}

/// What the site shows the wallet, in the form StreamGate's front end writes it.
fn sign_in_message(site: &Site, address: Address, nonce: &str, now: i64) -> String {
    format!(
        "{domain} wants you to sign in with your Ethereum account:
{address}

Sign in to StreamGate.

URI: {uri}
Version: 1
Chain ID: {chain_id}
Nonce: {nonce}
Issued At: {issued_at}
Expiration Time: {expires}",
        domain = site.domain,
        address = address.to_checksum(None),
        uri = site.uri,
        chain_id = site.chain_id,
        issued_at = rfc3339_utc(now),
        expires = rfc3339_utc(now + 3600),
    )
}

struct Site {
    domain: String,
    uri: String,
    chain_id: u64,
}

struct Signed {
    message: String,
    signature: String,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build()
}

/// POSTs a JSON body; returns the status and the body (any status).
fn post_json(agent: &ureq::Agent, url: &str, body: &str) -> Result<(u16, String), Error> {
    let response = match agent
        .post(url)
        .set("content-type", "application/json")
        .send_string(body)
    {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.into()),
    };
    let status = response.status();
    // Reading the body to its end returns the connection to the agent's pool.
    Ok((status, response.into_string()?))
}

/// Runs `count` jobs on `workers` threads, each with its own state from `init`; returns the
/// wall time and each job's own duration. A job's error stops the run.
fn run_timed<S, I, J>(count: usize, workers: usize, init: I, job: J) -> Result<Run, Error>
where
    I: Fn() -> S + Sync,
    J: Fn(&mut S, usize) -> Result<(), Error> + Sync,
{
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let started = Instant::now();
    let per_worker: Vec<Vec<Duration>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.min(count))
            .map(|_| {
                scope.spawn(|| {
                    let mut state = init();
                    let mut times = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            break;
                        }
                        let t = Instant::now();
                        if let Err(e) = job(&mut state, i) {
                            failure.lock().unwrap().get_or_insert(e);
                            next.store(count, Ordering::Relaxed);
                            break;
                        }
                        times.push(t.elapsed());
                    }
                    times
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a worker panicked"))
            .collect()
    });
    let wall = started.elapsed();
    if let Some(e) = failure.into_inner().unwrap() {
        return Err(e);
    }
    let mut times: Vec<Duration> = per_worker.into_iter().flatten().collect();
    times.sort_unstable();
    Ok(Run { wall, times })
}

struct Run {
    wall: Duration,
    /// Sorted.
    times: Vec<Duration>,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.times.len() as f64 / self.wall.as_secs_f64()
    }
    /// Wall time per verification (the inverse of the throughput), in milliseconds.
    fn ms_per_verification(&self) -> f64 {
        self.wall.as_secs_f64() * 1000.0 / self.times.len() as f64
    }
    /// Nearest-rank percentile, in milliseconds.
    fn percentile_ms(&self, p: f64) -> f64 {
        let n = self.times.len();
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        self.times[rank.clamp(1, n) - 1].as_secs_f64() * 1000.0
    }
}

/// `eth_getCode` / `eth_call` over JSON-RPC on a keep-alive connection: what the component's
/// `HttpChainReader` does over Spin outbound HTTP, with the same request and answer handling.
struct NativeChain {
    agent: ureq::Agent,
    url: String,
    chain_id: u64,
    next_id: Cell<u64>,
}

impl NativeChain {
    fn new(url: &str, chain_id: u64) -> Self {
        Self {
            agent: agent(),
            url: url.to_string(),
            chain_id,
            next_id: Cell::new(1),
        }
    }

    fn call(&self, chain_id: u64, body: impl FnOnce(u64) -> String) -> Result<Bytes, RpcError> {
        if chain_id != self.chain_id {
            return Err(RpcError::Transport(format!(
                "no RPC URL configured for chain {chain_id}"
            )));
        }
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (status, answer) = post_json(&self.agent, &self.url, &body(id))
            .map_err(|e| RpcError::Transport(e.to_string()))?;
        if status != 200 {
            return Err(RpcError::Transport(format!("HTTP status {status}")));
        }
        rpc::parse_response(answer.as_bytes(), id)
    }
}

impl ChainReader for NativeChain {
    async fn eth_call(&self, chain_id: u64, to: Address, data: Bytes) -> Result<Bytes, RpcError> {
        self.call(chain_id, |id| rpc::eth_call_request(id, to, &data))
    }
    async fn get_code(&self, chain_id: u64, address: Address) -> Result<Bytes, RpcError> {
        self.call(chain_id, |id| rpc::get_code_request(id, address))
    }
}

/// Polls a future that never waits (the reader blocks inside it) to completion.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn chain_id_of(rpc_url: &str) -> Result<u64, Error> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []});
    let (status, answer) = post_json(&agent(), rpc_url, &body.to_string())?;
    let v: Value = serde_json::from_str(&answer)?;
    let hex_id = v
        .get("result")
        .and_then(Value::as_str)
        .filter(|_| status == 200)
        .ok_or_else(|| format!("eth_chainId answered {status}: {answer}"))?;
    Ok(u64::from_str_radix(hex_id.trim_start_matches("0x"), 16)?)
}

/// The same verification as the component's `verify`, short of storage and the session.
fn verify_natively(
    chain: &NativeChain,
    cfg: &SiweConfig,
    signed: &Signed,
    now: i64,
) -> Result<(), Error> {
    let message = check_message(&signed.message, cfg, now)?;
    let signature = decode_signature_hex(&signed.signature)?;
    let kind = block_on(verify_signature(
        chain,
        message.chain_id,
        message.address,
        signed.message.as_bytes(),
        &signature,
    ))?;
    if kind != SignerKind::Eoa {
        return Err(format!("expected an EOA signer, got {kind:?}").into());
    }
    Ok(())
}

/// Native signatures over messages with locally made (well-formed) nonces.
fn native_messages(site: &Site, wallets: &[Wallet], count: usize, salt: u8) -> Vec<Signed> {
    let now = unix_now();
    (0..count)
        .map(|i| {
            let mut random = [salt; NONCE_RANDOM_BYTES];
            random[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let wallet = &wallets[i % wallets.len()];
            let message = sign_in_message(site, wallet.address, &generate_nonce(random), now);
            let signature = wallet.personal_sign(&message);
            Signed { message, signature }
        })
        .collect()
}

/// Asks the host for `count` nonces (bound to their wallets; the requests are timed, for
/// reference) and then signs a message with each.
fn host_messages(
    args: &Args,
    site: &Site,
    wallets: &[Wallet],
    count: usize,
) -> Result<(Vec<Signed>, Run), Error> {
    let url = format!("{}/api/v1/auth/nonce", args.host);
    let nonces: Vec<Mutex<String>> = (0..count).map(|_| Mutex::default()).collect();
    let run = run_timed(count, args.concurrency, agent, |agent, i| {
        let wallet = &wallets[i % wallets.len()];
        let body = json!({"address": wallet.address.to_checksum(None)}).to_string();
        let (status, answer) = post_json(agent, &url, &body)?;
        if status != 200 {
            return Err(format!("POST /api/v1/auth/nonce answered {status}: {answer}").into());
        }
        let v: Value = serde_json::from_str(&answer)?;
        let nonce = v
            .get("nonce")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("no nonce in {answer}"))?;
        *nonces[i].lock().unwrap() = nonce.to_string();
        Ok(())
    })?;
    let now = unix_now();
    let signed = nonces
        .into_iter()
        .enumerate()
        .map(|(i, nonce)| {
            let wallet = &wallets[i % wallets.len()];
            let message = sign_in_message(site, wallet.address, &nonce.into_inner().unwrap(), now);
            let signature = wallet.personal_sign(&message);
            Signed { message, signature }
        })
        .collect();
    Ok((signed, run))
}

fn verify_through_host(args: &Args, signed: &[Signed]) -> Result<Run, Error> {
    let url = format!("{}/api/v1/auth/verify", args.host);
    let bodies: Vec<String> = signed
        .iter()
        .map(|s| json!({"message": s.message, "signature": s.signature}).to_string())
        .collect();
    run_timed(bodies.len(), args.concurrency, agent, |agent, i| {
        let (status, answer) = post_json(agent, &url, &bodies[i])?;
        if status != 200 {
            return Err(format!("POST /api/v1/auth/verify answered {status}: {answer}").into());
        }
        Ok(())
    })
}

fn verify_native_run(
    args: &Args,
    site: &Site,
    cfg: &SiweConfig,
    signed: &[Signed],
) -> Result<Run, Error> {
    let now = unix_now();
    run_timed(
        signed.len(),
        args.concurrency,
        || NativeChain::new(&args.rpc, site.chain_id),
        |chain, i| verify_natively(chain, cfg, &signed[i], now),
    )
}

/// The native verification without its RPC round trip: parse, validate, recover the signer.
fn native_cpu_run(args: &Args, cfg: &SiweConfig, signed: &[Signed]) -> Result<Run, Error> {
    let now = unix_now();
    run_timed(
        signed.len(),
        args.concurrency,
        || (),
        |_, i| {
            let message = check_message(&signed[i].message, cfg, now)?;
            let signature = decode_signature_hex(&signed[i].signature)?;
            let signer = recover_personal_sign(signed[i].message.as_bytes(), &signature)?;
            if signer != message.address {
                return Err("recovered another signer".into());
            }
            Ok(())
        },
    )
}

fn run(args: &Args) -> Result<bool, Error> {
    let chain_id = chain_id_of(&args.rpc)?;
    let site = Site {
        domain: args.host.trim_start_matches("http://").to_string(),
        uri: args.host.clone(),
        chain_id,
    };
    let cfg = SiweConfig::new(site.domain.clone(), site.uri.clone(), vec![chain_id]);
    let wallets: Vec<Wallet> = ANVIL_KEYS.iter().map(|k| Wallet::from_hex(k)).collect();
    let warmup = (args.count / 10).clamp(1, 200);
    println!(
        "SIWE verify: {} verifications, {} concurrent workers, {} warm-up each; chain {chain_id}, {} wallets",
        args.count,
        args.concurrency,
        warmup,
        wallets.len()
    );

    // Native: warm up (connections, caches), then measure.
    verify_native_run(
        args,
        &site,
        &cfg,
        &native_messages(&site, &wallets, warmup, 1),
    )?;
    let native_signed = native_messages(&site, &wallets, args.count, 2);
    let native = verify_native_run(args, &site, &cfg, &native_signed)?;
    let native_cpu = native_cpu_run(args, &cfg, &native_signed)?;

    // Host: nonces and signatures first (untimed, and within the nonce lifetime), then verify.
    let started = Instant::now();
    let (warm, _) = host_messages(args, &site, &wallets, warmup)?;
    let (signed, nonce) = host_messages(args, &site, &wallets, args.count)?;
    let preparation = started.elapsed();
    if preparation.as_secs() as i64 > NONCE_TTL_SECS / 2 {
        return Err(format!(
            "getting and signing the nonces took {preparation:?}: too close to their {NONCE_TTL_SECS} s lifetime; use a smaller count"
        )
        .into());
    }
    verify_through_host(args, &warm)?;
    let host = verify_through_host(args, &signed)?;

    let ratio = host.ms_per_verification() / native.ms_per_verification();
    let p50_ratio = host.percentile_ms(50.0) / native.percentile_ms(50.0);
    let row = |name: &str, r: &Run| {
        println!(
            "{name:44} {:>9.0} {:>9.3} {:>9.3} {:>9.3}",
            r.per_second(),
            r.ms_per_verification(),
            r.percentile_ms(50.0),
            r.percentile_ms(99.0)
        )
    };
    println!(
        "{:44} {:>9} {:>9} {:>9} {:>9}",
        "", "per s", "ms each", "p50 ms", "p99 ms"
    );
    row("embedded host (Wasm, POST /api/v1/auth/verify)", &host);
    row("native (same core calls, eth_getCode to anvil)", &native);
    let met = ratio <= TARGET_RATIO;
    println!(
        "verify time ratio (host/native, per verification): {ratio:.2}  (p50 latency ratio {p50_ratio:.2}; target <= {TARGET_RATIO:.0}: {})",
        if met { "met" } else { "NOT met" }
    );
    println!("for reference, not in the ratio:");
    row("  native without the RPC (parse, recover)", &native_cpu);
    row("  host POST /api/v1/auth/nonce", &nonce);
    Ok(met)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        // A missed target is a figure to record, not a failure of the run.
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-verify: {e}");
            ExitCode::FAILURE
        }
    }
}
