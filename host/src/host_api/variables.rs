//! `fermyon:spin/variables@2.0.0`: a component reads its own resolved variables.

use crate::engine::InstanceState;
use crate::host_api::bindings::fermyon::spin2_0_0::variables::{Error, Host};

impl Host for InstanceState {
    fn get(&mut self, name: String) -> Result<String, Error> {
        if let Err(message) = crate::variables::check_name(&name) {
            return Err(Error::InvalidName(message));
        }
        self.variables.get(&name).cloned().ok_or_else(|| {
            Error::Undefined(format!(
                "component `{}` has no variable `{name}`: add it to [component.{}.variables]",
                self.component_id, self.component_id
            ))
        })
    }
}
