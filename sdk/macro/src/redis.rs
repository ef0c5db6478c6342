//! `#[redis_component]`: checks the payload, message or batch argument and emits the export of
//! the raw, rich or batch world.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::Type;
use syn::spanned::Spanned;

use crate::handler::{Handler, Trigger, glue_local, last_segment};

pub const REDIS: Trigger = Trigger {
    attribute: "#[redis_component]",
    example: "fn handle(payload: String) -> anyhow::Result<()>",
    check_argument,
    emit,
};

/// The argument types a Redis handler may take, by their last path segment; the compiler checks
/// the rest (`FromPayload`, or the SDK's `Message`).
const ACCEPTED: &[&str] = &["Vec", "Bytes", "String", "Json", "Message", "Batch"];

fn check_argument(ty: &Type) -> syn::Result<()> {
    match last_segment(ty) {
        Some(segment) if ACCEPTED.iter().any(|name| segment.ident == name) => Ok(()),
        _ => Err(syn::Error::new_spanned(
            ty,
            "unsupported argument: a Redis handler takes the payload by value as `Vec<u8>`, `bytes::Bytes`, `String` or `Json<T>`, the whole `spin_trigger_sdk::redis::Message`, a `spin_trigger_sdk::redis::Batch` of stream entries, or nothing",
        )),
    }
}

/// Whether the handler's argument is the SDK type `name` (`Message`, `Batch`).
fn takes(handler: &Handler, name: &str) -> bool {
    handler
        .argument
        .as_ref()
        .and_then(last_segment)
        .is_some_and(|segment| segment.ident == name)
}

/// The export for the handler's world: the batch world for a `Batch`, ours for a `Message`,
/// Spin's raw world for a payload (so that it also runs on Spin's Redis trigger).
fn emit(handler: &Handler) -> TokenStream {
    let (message, argument) = (glue_local("message"), glue_local("argument"));
    let call = handler.call_as_future(quote! { #argument });
    let ty = match &handler.argument {
        Some(ty) => quote_spanned! { ty.span() => #ty },
        None => quote! { () },
    };
    let export = |glue: TokenStream| {
        quote_spanned! { handler.output_span() =>
            ::spin_trigger_sdk::__private::#glue(#message, |#argument: #ty| #call)
        }
    };
    if takes(handler, "Batch") {
        let export = export(quote! { batch_redis_export });
        return quote! {
            const _: () = {
                use ::spin_trigger_sdk::__private::redis_batch::exports::spin_trigger::sdk0_5_0::redis_batch_handler as wit;
                struct SpinRedisHandler;
                impl wit::Guest for SpinRedisHandler {
                    fn handle_batch(
                        #message: ::std::vec::Vec<wit::Message>,
                    ) -> ::core::result::Result<::std::vec::Vec<wit::EntryDecision>, wit::Error> {
                        #export
                    }
                }
                ::spin_trigger_sdk::__private::redis_batch::export!(SpinRedisHandler);
            };
        };
    }
    if takes(handler, "Message") {
        let export = export(quote! { rich_redis_export });
        return quote! {
            const _: () = {
                use ::spin_trigger_sdk::__private::redis::exports::spin_trigger::sdk0_5_0::redis_handler as wit;
                struct SpinRedisHandler;
                impl wit::Guest for SpinRedisHandler {
                    fn handle_message(#message: wit::Message) -> ::core::result::Result<wit::Outcome, wit::Error> {
                        #export
                    }
                }
                ::spin_trigger_sdk::__private::redis::export!(SpinRedisHandler);
            };
        };
    }
    let export = export(quote! { raw_redis_export });
    quote! {
        const _: () = {
            use ::spin_trigger_sdk::__private::raw_redis::exports::fermyon::spin::inbound_redis as wit;
            struct SpinRedisHandler;
            impl wit::Guest for SpinRedisHandler {
                #[allow(unused_variables)]
                fn handle_message(#message: wit::Payload) -> ::core::result::Result<(), wit::Error> {
                    #export
                }
            }
            ::spin_trigger_sdk::__private::raw_redis::export!(SpinRedisHandler);
        };
    }
}
