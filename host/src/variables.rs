//! `fermyon:spin/variables@2.0.0`, answered from the app's resolved variables.

use streamgate_spin_app::variables::GetError;

use crate::bindings::variables::{self, Error};
use crate::state::RequestState;

impl variables::Host for RequestState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        Ok(self
            .services
            .variables
            .get(&self.component.id, &name)
            .map_err(|e| match e {
                GetError::InvalidName(m) => Error::InvalidName(m),
                GetError::Undefined(m) => Error::Undefined(m),
                GetError::Provider(m) => Error::Provider(m),
                GetError::Other(m) => Error::Other(m),
            }))
    }
}
