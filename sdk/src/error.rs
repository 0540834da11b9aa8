//! The error a model returns: a message that ends up in the run's ledger entry.

use core::fmt;

/// An error inside a model. Any standard error converts into it with `?`;
/// use [`Error::msg`] for your own messages.
///
/// ```
/// use jiandu_sdk::{Decimal, Error, Result};
///
/// fn ratio(text: &str) -> Result<Decimal> {
///     let r: Decimal = text.parse()?; // a standard error converts with `?`
///     if r > Decimal::ONE {
///         return Err(Error::msg(format!("ratio {r} is above 1")));
///     }
///     Ok(r)
/// }
/// assert_eq!(ratio("0.015")?, Decimal::new(15, 3));
/// assert_eq!(ratio("1.5").unwrap_err().to_string(), "ratio 1.5 is above 1");
/// assert!(ratio("1.5%").is_err());
/// # Ok::<(), Error>(())
/// ```
pub struct Error {
    message: String,
}

/// `Result` with the SDK's [`Error`].
///
/// ```
/// use jiandu_sdk::{Date, Result};
/// fn deadline(text: &str) -> Result<Date> {
///     Ok(text.parse()?)
/// }
/// assert_eq!(deadline("2024-06-30")?, Date::from_ymd_opt(2024, 6, 30).unwrap());
/// assert!(deadline("2024-06-31").is_err());
/// # Ok::<(), jiandu_sdk::Error>(())
/// ```
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    /// An error with this message.
    ///
    /// ```
    /// let e = jiandu_sdk::Error::msg("levy year 2024: no social insurance data");
    /// assert_eq!(e.to_string(), "levy year 2024: no social insurance data");
    /// ```
    pub fn msg(message: impl fmt::Display) -> Self {
        Error {
            message: message.to_string(),
        }
    }

    /// Prefixes the message with what was being done.
    ///
    /// ```
    /// let e = jiandu_sdk::Error::msg("expected a date, found `2024-13-01`")
    ///     .context("employer 91350100M000100Y43");
    /// assert_eq!(
    ///     e.to_string(),
    ///     "employer 91350100M000100Y43: expected a date, found `2024-13-01`"
    /// );
    /// ```
    pub fn context(self, what: impl fmt::Display) -> Self {
        Error {
            message: format!("{what}: {}", self.message),
        }
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(e: E) -> Self {
        Error::msg(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
