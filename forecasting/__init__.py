"""Energy and emission forecasts with their backtest, and the quota burn-down (docs/forecasting.md)."""
