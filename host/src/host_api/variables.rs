//! `fermyon:spin/variables@2.0.0` and `spin:variables/variables@3.0.0`: a component reads its
//! own resolved variables.

use wasmtime::component::Accessor;

use crate::host_api::InstanceState;
use crate::host_api::Spin3;
use crate::host_api::bindings::fermyon::spin2_0_0::variables::{self as v2, Error};
use crate::host_api::spin3_bindings::spin::variables::variables as v3;

impl InstanceState {
    /// The component's variable `name`, as both versions of the interface answer it.
    fn variable(&self, name: &str) -> Result<String, Error> {
        if let Err(message) = crate::variable_templates::check_name(name) {
            return Err(Error::InvalidName(message));
        }
        self.variables.get(name).cloned().ok_or_else(|| {
            Error::Undefined(format!(
                "component `{}` has no variable `{name}`: add it to [component.{}.variables]",
                self.component_id, self.component_id
            ))
        })
    }
}

impl v2::Host for InstanceState {
    fn get(&mut self, name: String) -> Result<String, Error> {
        self.variable(&name)
    }
}

impl From<Error> for v3::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidName(message) => v3::Error::InvalidName(message),
            Error::Undefined(message) => v3::Error::Undefined(message),
            Error::Provider(message) => v3::Error::Provider(message),
            Error::Other(message) => v3::Error::Other(message),
        }
    }
}

impl v3::Host for InstanceState {}

impl<T: Send> v3::HostWithStore<T> for Spin3 {
    async fn get(accessor: &Accessor<T, Self>, name: String) -> Result<String, v3::Error> {
        accessor.with(|mut access| access.get().variable(&name).map_err(Into::into))
    }
}
