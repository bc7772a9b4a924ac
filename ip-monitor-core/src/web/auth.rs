//! Who may press the buttons: the token of the `POST`s, as a bearer header or a form field,
//! compared in constant time.

use super::Dashboard;
use super::request::{Request, Response, form_field};
use super::shown::Reader;

impl Dashboard {
    /// Who reads a `GET`: an operator when it carries the token as a bearer header.
    pub(super) fn reader(&self, request: &Request<'_>) -> Reader {
        let bearer = request
            .authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match (&self.token, bearer) {
            (Some(token), Some(given)) if same(given.as_bytes(), token.as_bytes()) => {
                Reader::Operator
            }
            _ => Reader::Public,
        }
    }

    /// `Ok` when `request` carries this dashboard's token; else the refusal to send.
    pub(super) fn authorize(&self, request: &Request<'_>) -> Result<(), Response> {
        let Some(token) = &self.token else {
            return Err(Response::text(
                403,
                "the check and test actions are off: no token is configured",
            ));
        };
        let bearer = request
            .authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let field = request
            .is_form()
            .then(|| form_field(request.body, "token"))
            .flatten();
        let given = bearer.map(str::to_owned).or(field);
        match given {
            Some(given) if same(given.as_bytes(), token.as_bytes()) => Ok(()),
            Some(_) => Err(Response::text(401, "wrong token").header("WWW-Authenticate", "Bearer")),
            None => Err(Response::text(
                401,
                "a token is needed (Authorization: Bearer, or the form field token)",
            )
            .header("WWW-Authenticate", "Bearer")),
        }
    }
}

/// Compare secrets in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"s3cret", b"s3cret"));
        assert!(!same(b"s3cret", b"s3cre"));
        assert!(!same(b"s3cret", b"s3creT"));
    }
}
