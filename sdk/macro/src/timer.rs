//! `#[timer_component]`: checks the tick argument and emits the export of the raw or rich world.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Type;

use crate::handler::{Handler, Trigger, glue_local, last_segment};

pub const TIMER: Trigger = Trigger {
    attribute: "#[timer_component]",
    example: "fn handle(tick: Tick) -> anyhow::Result<()>",
    check_argument,
    emit,
};

fn check_argument(ty: &Type) -> syn::Result<()> {
    match last_segment(ty) {
        Some(segment) if segment.ident == "Tick" && segment.arguments.is_none() => Ok(()),
        _ => Err(syn::Error::new_spanned(
            ty,
            "unsupported argument: a timer handler takes `spin_trigger_sdk::timer::Tick` by value, or nothing",
        )),
    }
}

fn emit(handler: &Handler) -> TokenStream {
    if handler.is_raw() {
        let call = handler.call_as_future(TokenStream::new());
        return quote! {
            const _: () = {
                struct SpinTimerHandler;
                impl ::spin_trigger_sdk::__private::raw_timer::Guest for SpinTimerHandler {
                    fn handle_timer_request() {
                        ::spin_trigger_sdk::__private::raw_timer_export(#call)
                    }
                }
                ::spin_trigger_sdk::__private::raw_timer::export!(SpinTimerHandler);
            };
        };
    }
    let tick = glue_local("tick");
    let argument = handler.argument.as_ref().map(|ty| {
        quote::quote_spanned! { syn::spanned::Spanned::span(ty) =>
            <#ty as ::core::convert::From<_>>::from(#tick)
        }
    });
    let call = handler.call_as_future(quote! { #argument });
    let export = quote::quote_spanned! { handler.output_span() =>
        ::spin_trigger_sdk::__private::rich_timer_export(#call)
    };
    quote! {
        const _: () = {
            use ::spin_trigger_sdk::__private::timer::exports::spin_trigger::sdk0_4_0::timer_handler as wit;
            struct SpinTimerHandler;
            impl wit::Guest for SpinTimerHandler {
                #[allow(unused_variables)]
                fn handle_tick(#tick: wit::Tick) -> ::core::result::Result<(), wit::Error> {
                    #export
                }
            }
            ::spin_trigger_sdk::__private::timer::export!(SpinTimerHandler);
        };
    }
}
