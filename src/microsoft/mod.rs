//! Clients for Microsoft's login (Entra), Graph and Partner Center endpoints. No Kubernetes
//! imports. Under construction (issue 4).
