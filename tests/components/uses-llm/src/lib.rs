//! Imports `fermyon:spin/llm@2.0.0`, which the embedded host does not implement: the host must
//! refuse to start and name that interface.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::llm;

#[http_component]
fn handle(_req: Request) -> Response {
    let answer = llm::infer(llm::InferencingModel::Llama2Chat, "hello")
        .map(|r| r.text)
        .unwrap_or_else(|e| format!("{e:?}"));
    Response::new(200, answer)
}
