//! What every handler attribute shares: parsing the function, checking the shape all triggers
//! accept, and emitting the item beside either the export glue or the errors.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, Signature, Type};

/// A trigger kind's rules: its attribute name, how it checks the argument, and what it emits.
pub struct Trigger {
    /// The attribute as users write it, for messages: `#[timer_component]`.
    pub attribute: &'static str,
    /// A minimal correct handler, shown in messages.
    pub example: &'static str,
    /// Checks the handler's one argument, if any, and says which kind of event it takes.
    pub check_argument: fn(&Type) -> syn::Result<()>,
    /// Emits the export glue for a validated handler.
    pub emit: fn(&Handler) -> TokenStream,
}

/// A validated handler: all that emission needs.
pub struct Handler {
    pub name: syn::Ident,
    pub is_async: bool,
    /// The argument's type, when the handler takes the event.
    pub argument: Option<Type>,
    /// The declared return type; `None` for `()`.
    pub output: Option<Type>,
}

impl Handler {
    /// A handler that takes nothing and returns `()`: it exports the trigger's raw Spin world.
    pub fn is_raw(&self) -> bool {
        self.argument.is_none() && self.output.is_none()
    }

    /// The call to the user's function, as a future, whether it is `async` or not.
    pub fn call_as_future(&self, event: TokenStream) -> TokenStream {
        let name = &self.name;
        let args = self.argument.as_ref().map(|_| event);
        if self.is_async {
            quote! { #name(#args) }
        } else {
            quote! { async move { #name(#args) } }
        }
    }

    /// Where type errors about the handler's result (an error type without `Display`) belong:
    /// the return type the user wrote.
    pub fn output_span(&self) -> proc_macro2::Span {
        self.output
            .as_ref()
            .map_or_else(proc_macro2::Span::call_site, |output| output.span())
    }
}

/// A local of the generated glue. Mixed-site hygiene keeps it apart from the user's names, so a
/// handler may itself be called `tick` or `message`.
pub fn glue_local(name: &str) -> syn::Ident {
    syn::Ident::new(name, proc_macro2::Span::mixed_site())
}

/// Expands one handler attribute.
pub fn expand(trigger: &Trigger, attr: TokenStream, item: TokenStream) -> TokenStream {
    let function = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            let error = syn::Error::new_spanned(
                &item,
                format!(
                    "{} goes on a function, like `{}`",
                    trigger.attribute, trigger.example
                ),
            );
            return with_errors(item, error);
        }
    };
    let validated = check_no_arguments(trigger, attr).and_then(|()| validate(trigger, &function));
    match validated {
        Ok(handler) => {
            let glue = (trigger.emit)(&handler);
            let one_per_crate = one_handler_per_crate(&handler.name);
            quote! {
                #function
                #one_per_crate
                #glue
            }
        }
        Err(error) => with_errors(function.into_token_stream(), error),
    }
}

fn with_errors(item: TokenStream, error: syn::Error) -> TokenStream {
    let errors = error.to_compile_error();
    quote! { #item #errors }
}

fn check_no_arguments(trigger: &Trigger, attr: TokenStream) -> syn::Result<()> {
    if attr.is_empty() {
        return Ok(());
    }
    Err(syn::Error::new_spanned(
        attr,
        format!(
            "{} takes no arguments: the trigger's settings (interval, channel, ...) belong in spin.toml; write `{}`",
            trigger.attribute, trigger.attribute
        ),
    ))
}

/// Checks the shape every trigger accepts and collects every mistake, not just the first.
fn validate(trigger: &Trigger, function: &ItemFn) -> syn::Result<Handler> {
    let signature = &function.sig;
    let mut errors = signature_errors(signature);
    let argument = validate_arguments(trigger, signature, &mut errors);
    let output = match &signature.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) if is_unit(ty) => None,
        ReturnType::Type(_, ty) if is_result(ty) || is_outcome(ty) => Some((**ty).clone()),
        ReturnType::Type(_, ty) => {
            errors.push(error_at(
                ty,
                "unsupported return type: return nothing, or `Result<(), E>` where `E: Display` (for example `anyhow::Result<()>`); a Redis handler taking a `Message` may also return `Outcome` or `Result<Outcome, E>`",
            ));
            None
        }
    };

    let mut errors = errors.into_iter();
    match errors.next() {
        None => Ok(Handler {
            name: signature.ident.clone(),
            is_async: signature.asyncness.is_some(),
            argument,
            output,
        }),
        Some(mut first) => {
            first.extend(errors);
            Err(first)
        }
    }
}

/// What a handler's signature may not have, whatever the trigger: generics, `const`, `unsafe`,
/// an ABI, variadics.
fn signature_errors(signature: &Signature) -> Vec<syn::Error> {
    let mut errors = Vec::new();
    if !signature.generics.params.is_empty() {
        errors.push(error_at(
            &signature.generics,
            "a handler cannot be generic: the host calls it with one concrete event type; remove the generic parameters",
        ));
    }
    if let Some(where_clause) = &signature.generics.where_clause {
        errors.push(error_at(
            where_clause,
            "a handler cannot have a `where` clause; remove it",
        ));
    }
    if let Some(constness) = &signature.constness {
        errors.push(error_at(
            constness,
            "a handler cannot be a `const fn`; remove `const`",
        ));
    }
    if let Some(unsafety) = &signature.unsafety {
        errors.push(error_at(
            unsafety,
            "a handler cannot be an `unsafe fn`; remove `unsafe`",
        ));
    }
    if let Some(abi) = &signature.abi {
        errors.push(error_at(
            abi,
            "a handler is a plain Rust function; remove the `extern` ABI",
        ));
    }
    if let Some(variadic) = &signature.variadic {
        errors.push(error_at(
            variadic,
            "a handler cannot be variadic; remove `...`",
        ));
    }
    errors
}

/// The handler's one argument, the event, checked by the trigger; every other argument (and
/// `self`) is an error.
fn validate_arguments(
    trigger: &Trigger,
    signature: &Signature,
    errors: &mut Vec<syn::Error>,
) -> Option<Type> {
    let mut argument = None;
    for (index, input) in signature.inputs.iter().enumerate() {
        match input {
            FnArg::Receiver(receiver) => errors.push(error_at(
                receiver,
                format!(
                    "a handler is a free function, not a method; remove `self` and move it out of the `impl` block, like `{}`",
                    trigger.example
                ),
            )),
            FnArg::Typed(typed) if index == 0 => match (trigger.check_argument)(&typed.ty) {
                Ok(()) => argument = Some((*typed.ty).clone()),
                Err(error) => errors.push(error),
            },
            FnArg::Typed(typed) => errors.push(error_at(
                typed,
                format!(
                    "a handler takes at most one argument, the event; remove this one, like `{}`",
                    trigger.example
                ),
            )),
        }
    }
    argument
}

fn error_at(tokens: impl ToTokens, message: impl std::fmt::Display) -> syn::Error {
    syn::Error::new_spanned(tokens, message)
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(tuple) if tuple.elems.is_empty())
}

/// `Result<..>` under any path (`anyhow::Result<()>`, `std::io::Result<()>`); the compiler checks
/// the rest through `HandlerResult`.
fn is_result(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|segment| segment.ident == "Result")
}

/// `Outcome` under any path (`spin_trigger_sdk::redis::Outcome`); the compiler checks that the
/// handler may return it.
fn is_outcome(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|segment| segment.ident == "Outcome")
}

/// The last path segment of a plain path type, such as `Tick` in `spin_trigger_sdk::timer::Tick`.
pub fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        Type::Paren(inner) => last_segment(&inner.elem),
        Type::Group(inner) => last_segment(&inner.elem),
        _ => None,
    }
}

/// A crate-root name that each handler defines: a second handler in the same crate defines it
/// again, which the compiler reports on that handler's name before anything is linked.
fn one_handler_per_crate(name: &syn::Ident) -> TokenStream {
    let marker = syn::Ident::new(
        "only_one_timer_component_or_redis_component_handler_is_allowed_per_crate",
        name.span(),
    );
    quote! {
        #[doc(hidden)]
        #[macro_export]
        macro_rules! #marker { () => {}; }
    }
}
