//! Canary reports: run outcomes, status, previews of resume and abort.
