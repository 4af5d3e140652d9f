// Placeholder entry: replaced by the dashboard.
document.getElementById('app')!.textContent = 'NixFleet';
