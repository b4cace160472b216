"""HTTP to the model servers and to Prometheus, for the verification checks.

What to send and how to judge the answers is adroit.plan.verification's; this
package only sends, times, and hands back what came back.
"""
