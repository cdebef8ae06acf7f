//! The statuses every route can answer besides its own: the ones the shared machinery gives
//! (the token check, the parameter and body extractors, the body limit, the store), added to
//! each operation of the OpenAPI document so it lists every status a client can see.
//!
//! Knows the document's shape and the API's shared failure modes; nothing of any one route.

use utoipa::openapi::path::Operation;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response, ResponseBuilder};

/// Adds the shared statuses to every operation that does not document them itself.
pub(super) fn complete(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            complete_operation(operation);
        }
    }
}

fn complete_operation(operation: &mut Operation) {
    // The document itself is public and static: nothing shared can fail there.
    let public = operation
        .security
        .as_ref()
        .is_some_and(|s| s.iter().all(|r| *r == Default::default()));
    if public {
        return;
    }
    let has_parameters = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let has_body = operation.request_body.is_some();
    let mut shared = Vec::new();
    if has_parameters || has_body {
        shared.push((
            "400",
            "Malformed request: a path or query parameter of the wrong type or out of range, or a malformed body",
        ));
    }
    shared.push(("401", "Missing or invalid token"));
    shared.push((
        "403",
        "The wrong kind of token: a partner's on an administrator's route, or the administrator's on a partner's route",
    ));
    if has_body {
        shared.push(("413", "Request body over the size limit"));
    }
    shared.push(("500", "Internal error (details in the server's log)"));
    shared.push((
        "503",
        "The database is unreachable; retry after the number of seconds in `Retry-After`",
    ));
    for (status, description) in shared {
        if !operation.responses.responses.contains_key(status) {
            operation
                .responses
                .responses
                .insert(status.to_owned(), RefOr::T(error_response(description)));
        }
    }
}

/// A response whose body is the API's error document.
fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody")))),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_authenticated_operation_lists_the_shared_statuses() {
        let (_, mut doc) = super::super::routes();
        complete(&mut doc);
        for (path, item) in &doc.paths.paths {
            for operation in [&item.get, &item.post, &item.patch, &item.delete]
                .into_iter()
                .flatten()
            {
                for status in ["401", "403", "500", "503"] {
                    assert!(
                        operation.responses.responses.contains_key(status),
                        "{path} lacks {status}"
                    );
                }
                if operation.request_body.is_some() {
                    for status in ["400", "413"] {
                        assert!(
                            operation.responses.responses.contains_key(status),
                            "{path} lacks {status}"
                        );
                    }
                }
            }
        }
    }
}
